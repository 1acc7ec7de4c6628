"""The licensing service over HTTP (docs/ILS_API.md): the same contract for the in-process client and
the HTTP client against a live server; idempotent retries; credentials; the ILS being down.

HTTP tests use real HTTP: pytest-django's live_server and requests, no mocks."""

import datetime
import hashlib
import json
import socket
import threading
import time
import uuid

import pytest
import requests

from ald_portal import clock
from devices import ils
from devices.engine import run_cycle
from devices.ils import HttpLicensingClient, IlsCredentialRefused, IlsUnavailable, InProcessLicensingClient
from devices.models import DeploymentSettings, DeviceLicense, LicenseWait
from devices.services import ums_identity
from licensing.api import views as api_views
from licensing.contract import LicenseErrorCode, LicenseServiceError, signing_payload
from licensing.models import AldToken, IlsRequest, LicenseSlot, ProductPack, SubscriptionKey
from licensing.services import delete_ald_token, generate_ald_token, merge_packs, packs_for_ums
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

UNITS = [f.mac_for(n) for n in range(1, 8)]


def http_client(url, conf=None, tokens=(), **kwargs):
    conf = conf or ums_identity()
    kwargs = {"retries": 1, "backoff": 0.01, "connect_timeout": 2, "read_timeout": 10, **kwargs}
    return HttpLicensingClient(url, conf.ums_id_fingerprint, conf.ums_id_private_key_pem, tokens, **kwargs)


@pytest.fixture(params=["in_process", "http"])
def make_client(request):
    """A factory of clients of this UMS (optionally with ALD tokens), in-process or over HTTP."""

    def make(tokens=()):
        conf = ums_identity()
        if request.param == "in_process":
            return InProcessLicensingClient(conf.ums_id_fingerprint, tokens)
        return http_client(request.getfixturevalue("live_server").url, conf, tokens)

    return make


def dead_url():
    """An address where nothing listens: a port taken from the OS and released at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the contract: both clients -------------------------------------------------------------------


def test_refresh_lists_the_packs_assigned_to_this_ums_with_their_values(make_client):
    f.pack("WE-AAAAA", total=5)
    f.pack("EMP-BBBBB", product_type="EMP", total=3, expiry=None)
    f.pack("WE-CCCCC", total=9, assign=False)  # the same company's, not assigned to this UMS
    infos = make_client().refresh_packs()
    assert [i.pack_id for i in infos] == ["WE-AAAAA", "EMP-BBBBB"]
    assert infos == packs_for_ums(ums_identity().ums_id_fingerprint)
    emp = infos[1]
    assert (emp.total, emp.used, emp.free, emp.expiry_date, emp.usable) == (3, 0, 3, None, True)
    assert infos[0].expiry_date == datetime.date(2027, 12, 3)


def test_request_grants_up_to_the_free_licenses_and_a_second_ask_takes_no_second_slot(make_client):
    f.pack("WE-AAAAA", total=5)
    client = make_client()
    result = client.request_licenses("WE-AAAAA", UNITS)
    assert [g.unit_id for g in result.granted] == UNITS[:5]
    assert result.denied == {u: LicenseErrorCode.NO_FREE_LICENSE for u in UNITS[5:]}
    assert (result.pack.total, result.pack.used) == (5, 5)
    assert result.granted[0].expiry_date == datetime.date(2027, 12, 3)
    assert result.granted[0].bound_at == clock.now()
    again = client.request_licenses("WE-AAAAA", UNITS[:2])
    assert [g.already_held for g in again.granted] == [True, True]
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 5
    assert LicenseSlot.objects.filter(released_at__isnull=True).count() == 5


@pytest.mark.parametrize(
    "pack_kwargs, pack_id, units, code",
    [
        ({"expiry": datetime.date(2026, 12, 2)}, "WE-AAAAA", UNITS[:1], LicenseErrorCode.PACK_EXPIRED),
        ({"assign": False}, "WE-AAAAA", UNITS[:1], LicenseErrorCode.PACK_NOT_ASSIGNED),
        ({}, "WE-ZZZZZ", UNITS[:1], LicenseErrorCode.UNKNOWN_PACK),
        ({}, "WE-AAAAA", ["00e0c5:bad"], LicenseErrorCode.UNKNOWN_UNIT_ID),
        ({"eula": False}, "WE-AAAAA", UNITS[:1], LicenseErrorCode.EULA_NOT_ACCEPTED),
    ],
)
def test_refusals_come_back_as_the_same_error_codes(make_client, pack_kwargs, pack_id, units, code):
    f.ums()
    f.pack("WE-AAAAA", total=5, **pack_kwargs)
    with pytest.raises(LicenseServiceError) as refused:
        make_client().request_licenses(pack_id, units)
    assert refused.value.code == code
    assert not LicenseSlot.objects.exists()


def test_release_frees_the_slot_and_releasing_twice_is_harmless(make_client):
    f.pack("WE-AAAAA", total=5)
    client = make_client()
    client.request_licenses("WE-AAAAA", UNITS[:2])
    assert client.release("WE-AAAAA", UNITS[0]) is True
    assert client.release("WE-AAAAA", UNITS[0]) is False
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1
    assert client.slots() == [("WE-AAAAA", UNITS[1])]
    assert client.slots(["WE-AAAAA"]) == [("WE-AAAAA", UNITS[1])]


def test_release_in_a_pack_of_another_ums_frees_nothing(make_client):
    from licensing.services import request_licenses

    f.ums()
    f.pack("WE-AAAAA", total=5, assign=False)
    request_licenses("WE-AAAAA", UNITS[:1])  # bound by the License Portal itself, no UMS
    assert make_client().release("WE-AAAAA", UNITS[0]) is False
    assert make_client().release("WE-ZZZZZ", UNITS[0]) is False
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


def test_a_license_file_is_signed_by_the_licensing_service_for_a_unit_holding_a_slot(make_client, tmp_path):
    from django.core.management import call_command

    f.pack("WE-AAAAA", total=5)
    client = make_client()
    grant = client.request_licenses("WE-AAAAA", UNITS[:1]).granted[0]
    content = client.license_file(UNITS[0], "WE", "WE-AAAAA", grant.expiry_date, grant.bound_at)
    document = json.loads(content)
    assert document["license"]["unit_id"] == UNITS[0]
    assert document["license"]["pack_id"] == "WE-AAAAA"
    assert document["license"]["expires"] == "2027-12-03"
    path = tmp_path / "device.lic"
    path.write_bytes(content)
    call_command("verify_license", str(path))  # exits non-zero (SystemExit) unless valid
    # a unit without a slot there, the wrong service, or a pack of another UMS: refused, nothing issued
    for args, code in (
        ((UNITS[1], "WE", "WE-AAAAA"), LicenseErrorCode.UNKNOWN_UNIT_ID),
        ((UNITS[0], "EMP", "WE-AAAAA"), LicenseErrorCode.BAD_REQUEST),
    ):
        with pytest.raises(LicenseServiceError) as refused:
            client.license_file(*args, grant.expiry_date, grant.bound_at)
        assert refused.value.code == code, args
    f.pack("WE-CCCCC", total=9, assign=False)
    with pytest.raises(LicenseServiceError) as refused:
        client.license_file(UNITS[0], "WE", "WE-CCCCC", None, grant.bound_at)
    assert refused.value.code == LicenseErrorCode.PACK_NOT_ASSIGNED


def test_merged_packs_and_counter_reconciliation(make_client):
    f.pack("WE-AAAAA", total=5, product_name="IGEL WE")
    f.pack("WE-BBBBB", total=5, product_name="IGEL WE", order=ProductPack.objects.get().order)
    client = make_client()
    client.request_licenses("WE-BBBBB", UNITS[:1])
    merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="tester")
    assert client.merged_packs() == {"WE-BBBBB": "WE-AAAAA"}
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(used=4)  # a drifted counter
    assert client.reconcile_counters() == {"WE-AAAAA": (4, 1)}
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


def _token_company(name, account, key, pack_id, total=2):
    company = f.company(name, account)
    sk = SubscriptionKey.objects.create(company=company, key=key)
    f.pack(pack_id, total=total, company=company, subscription_key=sk, assign=False)
    return sk, generate_ald_token(sk, actor="partner@example.com")[1]


def test_an_ald_token_gives_the_packs_of_its_subscription_key(make_client):
    sk, token = _token_company("Kunde A", "GA-A", "SK-A", "WE-AAAAA")
    f.pack("WE-OTHER", total=3, assign=False)  # no subscription key: not behind the token
    client = make_client(tokens=[token])
    assert [i.pack_id for i in client.refresh_packs()] == ["WE-AAAAA"]  # the UMS ID has none
    assert client.packs_via_token() == {"WE-AAAAA"}
    assert [g.unit_id for g in client.request_licenses("WE-AAAAA", UNITS[:1]).granted] == UNITS[:1]
    slot = LicenseSlot.objects.get()
    assert (slot.pack.pack_id, slot.ums_id) == ("WE-AAAAA", None)
    # a pack behind no token is asked through the UMS ID, which this License Portal does not know
    with pytest.raises(IlsCredentialRefused) as refused:
        client.request_licenses("WE-OTHER", UNITS[1:2])
    assert refused.value.code == LicenseErrorCode.BAD_CREDENTIAL
    assert LicenseSlot.objects.count() == 1


def test_a_deleted_token_is_refused_and_its_reissued_successor_works(make_client):
    sk, token = _token_company("Kunde A", "GA-A", "SK-A", "WE-AAAAA")
    _, new_token = delete_ald_token(sk, actor="partner@example.com")
    with pytest.raises(IlsCredentialRefused) as refused:
        make_client(tokens=[token]).refresh_packs()
    assert refused.value.code == LicenseErrorCode.REVOKED_CREDENTIAL
    with pytest.raises(IlsCredentialRefused) as unknown:
        make_client(tokens=["ald_" + "x" * 43]).refresh_packs()
    assert unknown.value.code == LicenseErrorCode.BAD_CREDENTIAL
    assert [i.pack_id for i in make_client(tokens=[new_token]).refresh_packs()] == ["WE-AAAAA"]
    assert not LicenseSlot.objects.exists()


# --- HTTP only: signatures, idempotency keys, timeouts, the service down ----------------------------


def signed(live_server, method, path, body=b"", key=None, timestamp=None, conf=None, **headers):
    """A request signed by hand, to show exactly what the ILS checks."""
    conf = conf or ums_identity()
    key = key or uuid.uuid4().hex
    timestamp = str(int((timestamp or clock.now()).timestamp()))
    signature = ils.sign(conf.ums_id_private_key_pem, signing_payload(method, path, timestamp, key, body))
    return requests.request(
        method,
        live_server.url + path,
        data=body,
        timeout=10,
        headers={
            "Idempotency-Key": key,
            "X-UMS-ID": conf.ums_id_fingerprint,
            "X-UMS-Timestamp": timestamp,
            "X-UMS-Signature": signature,
            "Content-Type": "application/json",
            **headers,
        },
    )


def test_the_same_idempotency_key_twice_takes_one_slot_and_gives_the_first_answer(live_server):
    f.pack("WE-AAAAA", total=5)
    body = json.dumps({"pack_id": "WE-AAAAA", "unit_ids": UNITS[:2]}).encode()
    first = signed(live_server, "POST", "/ils/v1/licenses/request", body, key="retry-0001")
    again = signed(live_server, "POST", "/ils/v1/licenses/request", body, key="retry-0001")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert [g["already_held"] for g in again.json()["granted"]] == [False, False]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 2
    assert IlsRequest.objects.count() == 1
    other = json.dumps({"pack_id": "WE-AAAAA", "unit_ids": UNITS[2:3]}).encode()
    reused = signed(live_server, "POST", "/ils/v1/licenses/request", other, key="retry-0001")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == LicenseErrorCode.IDEMPOTENCY_KEY_REUSED
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 2


def test_a_read_timeout_after_the_server_committed_is_retried_without_a_second_slot(live_server, monkeypatch):
    f.pack("WE-AAAAA", total=5)
    real, answers = api_views.render_json, []

    def lost_first_answer(status, body, replayed=False):
        answers.append(replayed)
        if len(answers) == 1:
            time.sleep(1.5)  # committed, but the answer comes too late for the client
        return real(status, body, replayed)

    monkeypatch.setattr(api_views, "render_json", lost_first_answer)
    client = http_client(live_server.url, read_timeout=0.5, retries=2)
    result = client.request_licenses("WE-AAAAA", UNITS[:3])
    assert [g.unit_id for g in result.granted] == UNITS[:3]
    assert answers[:2] == [False, True]  # the retry was answered from the stored first answer
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3
    assert LicenseSlot.objects.count() == 3
    assert IlsRequest.objects.count() == 1


def test_a_5xx_is_retried_with_backoff(live_server, monkeypatch):
    f.pack("WE-AAAAA", total=5)
    real, calls = api_views.services.request_licenses, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")  # an unexpected error: HTTP 500, nothing stored
        return real(*args, **kwargs)

    monkeypatch.setattr(api_views.services, "request_licenses", fails_once)
    result = http_client(live_server.url, retries=2).request_licenses("WE-AAAAA", UNITS[:1])
    assert len(calls) == 2 and len(result.granted) == 1
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


@pytest.mark.parametrize(
    "tamper, code",
    [
        ("signature", "bad_credential"),
        ("stale", "bad_credential"),
        ("unregistered", "bad_credential"),
        ("token_scheme", "bad_credential"),
        ("no_key", "bad_request"),
    ],
)
def test_bad_credentials_are_refused_with_their_code_and_change_nothing(live_server, tamper, code):
    f.pack("WE-AAAAA", total=5)
    body = json.dumps({"pack_id": "WE-AAAAA", "unit_ids": UNITS[:1]}).encode()
    path = "/ils/v1/licenses/request"
    if tamper == "signature":  # signed for one unit, sent for another
        response = signed(live_server, "POST", path, body, key="k-tamper-01", conf=None)
        other = json.dumps({"pack_id": "WE-AAAAA", "unit_ids": UNITS[1:2]}).encode()
        req = response.request
        response = requests.post(live_server.url + path, data=other, headers=dict(req.headers), timeout=10)
        LicenseSlot.objects.all().delete()  # the honest first request went through; undo it
        ProductPack.objects.filter(pack_id="WE-AAAAA").update(used=0)
    elif tamper == "stale":
        old = clock.now() - datetime.timedelta(seconds=301)
        response = signed(live_server, "POST", path, body, timestamp=old)
    elif tamper == "unregistered":
        from licensing.models import UmsId

        UmsId.objects.all().delete()
        response = signed(live_server, "POST", path, body)
    elif tamper == "token_scheme":
        response = requests.post(
            live_server.url + path,
            data=body,
            headers={"Authorization": "Bearer abc", "Idempotency-Key": "k-0000001"},
        )
    else:
        response = requests.post(live_server.url + path, data=body, timeout=10)
    assert response.json()["error"]["code"] == code
    assert response.status_code == (400 if code == "bad_request" else 401)
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0
    assert not LicenseSlot.objects.exists()


def test_a_get_on_a_write_endpoint_is_a_json_405(live_server):
    f.ums()
    response = signed(live_server, "GET", "/ils/v1/licenses/request")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "bad_request"


def test_ils_down_devices_wait_as_unreachable_and_are_licensed_once_it_is_back(live_server, settings):
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    devs = f.devices(3)
    settings.ILS_URL = dead_url()
    settings.ILS_RETRIES, settings.ILS_BACKOFF_SECONDS, settings.ILS_CONNECT_TIMEOUT = 1, 0.01, 1
    report = run_cycle().as_dict()
    assert report["waiting_reasons"] == {"ils_unreachable": 3}
    assert set(LicenseWait.objects.values_list("reason", flat=True)) == {"ils_unreachable"}
    assert not LicenseSlot.objects.exists()
    settings.ILS_URL = live_server.url  # the service is back
    run_cycle()
    assert DeviceLicense.objects.filter(device__in=devs).count() == 3
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3
    assert LicenseSlot.objects.filter(released_at__isnull=True).count() == 3
    assert not LicenseWait.objects.exists()


def test_the_proxy_of_the_deployment_page_is_used(live_server):
    f.pack("WE-AAAAA", total=5)
    conf = DeploymentSettings.load()
    conf.proxy_enabled, conf.proxy_host = True, "127.0.0.1"
    conf.proxy_port = int(dead_url().rsplit(":", 1)[1])
    conf.proxy_user, conf.proxy_password = "ums@corp", "p:ss/word"
    conf.save()
    assert ils.proxy_url(conf) == f"http://ums%40corp:p%3Ass%2Fword@127.0.0.1:{conf.proxy_port}"
    via_dead_proxy = http_client(live_server.url, retries=0, proxy_url=ils.proxy_url(conf))
    with pytest.raises(IlsUnavailable):
        via_dead_proxy.refresh_packs()
    # a forward proxy that is there: it relays the request and the answer
    proxy = _ForwardProxy()
    try:
        through = http_client(live_server.url, proxy_url=f"http://127.0.0.1:{proxy.port}")
        assert [i.pack_id for i in through.refresh_packs()] == ["WE-AAAAA"]
        assert proxy.seen and proxy.seen[0].startswith("GET " + live_server.url + "/ils/v1/packs")
    finally:
        proxy.close()


class _ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form request lines), enough to show the client uses it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        from urllib.parse import urlsplit

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                self.seen.append(lines[0])
                length = next(
                    (int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")), 0
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                method, url, _ = lines[0].split(" ")
                parts = urlsplit(url)
                headers = dict(x.split(": ", 1) for x in lines[1:] if ": " in x)
                headers.pop("Proxy-Authorization", None)
                upstream = requests.request(
                    method,
                    url,
                    data=rest or None,
                    headers={k: v for k, v in headers.items() if k.lower() not in ("host", "connection")},
                    timeout=10,
                )
                assert parts.netloc
                body = upstream.content
                conn.sendall(
                    f"HTTP/1.1 {upstream.status_code} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

    def close(self):
        self.sock.close()


def test_every_write_answer_is_stored_under_its_key_with_a_digest_of_the_request(live_server):
    f.pack("WE-AAAAA", total=5)
    body = json.dumps({"pack_id": "WE-AAAAA", "unit_id": UNITS[0]}).encode()
    response = signed(live_server, "POST", "/ils/v1/licenses/release", body, key="release-0001")
    assert response.json() == {"released": False}
    record = IlsRequest.objects.get()
    assert record.idempotency_key == "release-0001" and record.response == {"released": False}
    expected = hashlib.sha256(b"POST\n/ils/v1/licenses/release\n" + body).hexdigest()
    assert record.request_digest == expected
    assert AldToken.objects.count() == 0


# --- a service provider's UMS serving several companies ----------------------------------------------


@pytest.mark.parametrize("transport", ["in_process", "http"])
def test_one_ums_serving_several_companies_never_gives_one_companys_license_to_anothers_device(
    request, settings, transport
):
    """The UMS holds the ALD tokens of two customers (its own UMS ID is registered nowhere); each
    customer's pack is conditioned on that customer's directory. Company A has more devices than
    licenses: its surplus waits, and is never served from company B's free licenses."""
    from devices.models import RegisteredPack
    from devices.services import refresh_registered_packs, register_ald_token

    if transport == "http":
        settings.ILS_URL = request.getfixturevalue("live_server").url
    _, token_a = _token_company("Kunde A GmbH", "GA-A", "SK-A", "WE-AAAAA", total=2)
    _, token_b = _token_company("Kunde B AG", "GA-B", "SK-B", "WE-BBBBB", total=5)
    register_ald_token(token_a, actor="msp-admin", check=True)
    register_ald_token(token_b, actor="msp-admin", check=True)
    f.ald_on()
    refresh_registered_packs()
    # packs that came with a token select nobody until their conditions are set
    assert set(RegisteredPack.objects.values_list("pack_id", "distribution_method")) == {
        ("WE-AAAAA", "CONDITIONS"),
        ("WE-BBBBB", "CONDITIONS"),
    }
    dir_a, dir_b = f.directory("Kunde A"), f.directory("Kunde B")
    f.register_all(conditions={"WE-AAAAA": [dir_a], "WE-BBBBB": [dir_b]})
    devs_a = f.devices(4, start=100, directory=dir_a)
    devs_b = f.devices(2, start=200, directory=dir_b)
    run_cycle()
    licensed = dict(DeviceLicense.objects.values_list("device_id", "pack_id"))
    assert {licensed.get(d.pk) for d in devs_b} == {"WE-BBBBB"}
    assert [licensed.get(d.pk) for d in devs_a].count("WE-AAAAA") == 2
    assert [licensed.get(d.pk) for d in devs_a].count(None) == 2  # waiting, not served from B
    assert set(LicenseWait.objects.values_list("device_id", flat=True)) == {
        d.pk for d in devs_a if d.pk not in licensed
    }
    slots = LicenseSlot.objects.filter(released_at__isnull=True).select_related("pack__company")
    owner = {d.unit_id: "Kunde A GmbH" for d in devs_a} | {d.unit_id: "Kunde B AG" for d in devs_b}
    assert len(slots) == 4
    assert all(owner[s.unit_id] == s.pack.company.name for s in slots)
    assert ProductPack.objects.get(pack_id="WE-BBBBB").used == 2


def test_the_api_refuses_a_release_in_a_pack_not_assigned_to_the_caller(live_server):
    from licensing.services import request_licenses

    f.ums()
    f.pack("WE-AAAAA", total=5, assign=False)
    request_licenses("WE-AAAAA", UNITS[:1])
    body = json.dumps({"pack_id": "WE-AAAAA", "unit_id": UNITS[0]}).encode()
    response = signed(live_server, "POST", "/ils/v1/licenses/release", body)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "pack_not_assigned",
        "message": f"Pack WE-AAAAA is not assigned to UMS ID {ums_identity().ums_id_fingerprint}.",
    }
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


@pytest.mark.postgres
def test_concurrent_retries_with_one_idempotency_key_take_one_slot(live_server, postgres):
    """Five copies of one request (same key) at once: the first stores its answer, the others wait on
    the key's row and get that answer; one slot per unit ID."""
    f.pack("WE-AAAAA", total=5)
    body = json.dumps({"pack_id": "WE-AAAAA", "unit_ids": UNITS[:3]}).encode()
    conf = ums_identity()
    answers, start = [], threading.Barrier(5)

    def ask():
        start.wait()
        answers.append(
            signed(live_server, "POST", "/ils/v1/licenses/request", body, key="same-key-01", conf=conf)
        )

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 5
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert sum("Idempotent-Replayed" in a.headers for a in answers) == 4
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3
    assert LicenseSlot.objects.count() == 3 and IlsRequest.objects.count() == 1
