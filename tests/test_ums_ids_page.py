"""License Portal > UMS IDs and Subscription keys (ALD tokens), and the UMS side's part of them on
Licenses > Deployment: who may see and change them, the values shown, the changes made and logged."""

import hashlib

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.ils import IlsCredentialRefused, get_client, make_ums_key_pair
from devices.models import DeploymentEvent, DeploymentSettings, UmsAldToken
from devices.services import new_ums_id, ums_identity
from licensing.contract import LicenseErrorCode, LicenseServiceError
from licensing.models import AldToken, LicensePortalAction, ProductPack, SubscriptionKey, UmsId
from licensing.services import authenticate_token
from tests import factories as f

pytestmark = pytest.mark.django_db

UMS_IDS = reverse("licensing:ums_id_list")
KEYS = reverse("licensing:subscription_key_list")
DEPLOYMENT = reverse("devices:deployment")


def action(ums, name):
    return reverse("licensing:ums_id_action", args=[ums.pk, name])


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="x" * 12))
    return client


@pytest.fixture
def ilp_client(client, django_user_model):
    """A License Portal user with exactly the permissions these pages need."""
    user = django_user_model.objects.create_user("ilp-admin", password="x" * 12)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_umsid", "change_subscriptionkey"])
    )
    client.force_login(user)
    return client


@pytest.fixture
def ums():
    f.pack("WE-AAAAA", total=5)
    f.pack("EMP-BBBBB", product_type="EMP", total=3)
    f.pack("WE-CCCCC", total=4, assign=False)
    get_client().request_licenses("WE-AAAAA", [f.mac_for(1), f.mac_for(2)])
    return UmsId.objects.get()


def test_anonymous_users_are_sent_to_the_login(client, ums):
    for url in (UMS_IDS, KEYS, reverse("licensing:ums_id_certificate", args=[ums.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_list_shows_name_fingerprint_packs_and_consumption(reader_client, ums):
    response = reader_client.get(UMS_IDS)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h2>ALD Portal UMS</h2>" in html
    assert f'<code class="fingerprint" style="word-break:break-all">{ums.fingerprint}</code>' in html
    assert ums.fingerprint == ums_identity().ums_id_fingerprint
    (row,) = response.context["ums_ids"]
    assert [p.pack_id for p in row.packs.all()] == ["EMP-BBBBB", "WE-AAAAA"]
    assert row.consumed == 2
    assert [p.pack_id for p in row.assignable] == ["WE-CCCCC"]
    assert row.subject == "CN=ALD Portal UMS"
    assert "Read-only" in html and "Rename</button>" not in html


@pytest.mark.parametrize("name", ["rename", "auto-assign", "assign", "unassign", "change"])
def test_a_reader_may_not_change_a_ums_id(reader_client, ums, name):
    before = list(UmsId.objects.values())
    data = {"name": "X", "auto_assign": "on", "packs": ["WE-CCCCC"], "certificate": make_ums_key_pair("X")[1]}
    assert reader_client.post(action(ums, name), data).status_code == 403
    assert list(UmsId.objects.values()) == before
    assert ProductPack.objects.get(pack_id="WE-CCCCC").assigned_ums is None
    assert not LicensePortalAction.objects.exclude(action="REGISTER").exists()


def test_rename_is_logged_with_the_user(ilp_client, ums):
    response = ilp_client.post(action(ums, "rename"), {"name": "UMS Berlin"})
    assert response.status_code == 302
    assert UmsId.objects.get().name == "UMS Berlin"
    event = LicensePortalAction.objects.get(action="RENAME")
    assert (event.actor, event.detail) == ("ilp-admin", "UMS ID 'ALD Portal UMS' renamed to 'UMS Berlin'")
    refused = ilp_client.post(action(ums, "rename"), {"name": "  "})
    assert refused.status_code == 400
    assert "The UMS ID name must not be empty." in refused.content.decode()
    assert UmsId.objects.get().name == "UMS Berlin"


def test_assign_and_unassign_packs(ilp_client, ums):
    assert ilp_client.post(action(ums, "assign"), {"packs": ["WE-CCCCC"]}).status_code == 302
    assert ProductPack.objects.get(pack_id="WE-CCCCC").assigned_ums == ums
    assert [i.pack_id for i in get_client().refresh_packs()] == ["WE-AAAAA", "EMP-BBBBB", "WE-CCCCC"]
    assert ilp_client.post(action(ums, "unassign"), {"packs": ["EMP-BBBBB"]}).status_code == 302
    assert ProductPack.objects.get(pack_id="EMP-BBBBB").assigned_ums is None
    assert list(LicensePortalAction.objects.order_by("pk").values_list("actor", "detail"))[-2:] == [
        ("ilp-admin", "Assigned WE-CCCCC to UMS ID ALD Portal UMS"),
        ("ilp-admin", "Unassigned EMP-BBBBB from UMS ID ALD Portal UMS"),
    ]
    refused = ilp_client.post(action(ums, "assign"), {"packs": ["WE-NOPE1"]})
    assert (
        refused.status_code == 400 and "Pack &#x27;WE-NOPE1&#x27; does not exist." in refused.content.decode()
    )


def test_auto_assign_gives_new_packs_to_the_ums(ilp_client, ums):
    assert ilp_client.post(action(ums, "auto-assign"), {"auto_assign": "on"}).status_code == 302
    assert UmsId.objects.get().auto_assign is True
    new = f.pack("WE-NEWPK", total=7, assign=False)  # bought after auto assign was turned on
    assert new.assigned_ums == ums
    assert "WE-NEWPK" in [i.pack_id for i in get_client().refresh_packs()]
    ilp_client.post(action(ums, "auto-assign"), {"auto_assign": "off"})
    assert f.pack("WE-LATER", total=1, assign=False).assigned_ums is None
    assert LicensePortalAction.objects.filter(action="AUTO_ASSIGN", actor="ilp-admin").count() == 2


def test_change_ums_id_keeps_the_pack_assignments_and_the_new_key_works(ilp_client, ums):
    old = ums.fingerprint
    conf = new_ums_id("admin")  # the UMS gets a new key pair (a migration to another server)
    assert conf.ums_id_fingerprint != old
    with pytest.raises(IlsCredentialRefused) as refused:
        get_client().refresh_packs()
    assert refused.value.code == LicenseErrorCode.BAD_CREDENTIAL
    assert "Change UMS ID" in DeploymentEvent.objects.latest("pk").message
    response = ilp_client.post(action(ums, "change"), {"certificate": conf.ums_id_certificate_pem})
    assert response.status_code == 302
    ums.refresh_from_db()
    assert (ums.pk, ums.fingerprint, ums.certificate_pem) == (
        ums.pk,
        conf.ums_id_fingerprint,
        conf.ums_id_certificate_pem.strip(),
    )
    assert [i.pack_id for i in get_client().refresh_packs()] == ["WE-AAAAA", "EMP-BBBBB"]
    assert get_client().slots() == [("WE-AAAAA", f.mac_for(1)), ("WE-AAAAA", f.mac_for(2))]
    event = LicensePortalAction.objects.get(action="CHANGE_UMS_ID")
    assert event.actor == "ilp-admin" and old in event.detail and "2 pack assignment(s) kept" in event.detail


def test_change_ums_id_refuses_what_is_not_a_certificate(ilp_client, ums):
    response = ilp_client.post(action(ums, "change"), {"certificate": "hello"})
    assert response.status_code == 400
    assert "&#x27;hello&#x27; is not a PEM certificate" in response.content.decode()
    assert UmsId.objects.get().fingerprint == ums.fingerprint


def test_the_certificate_downloads_as_crt(reader_client, ums):
    response = reader_client.get(reverse("licensing:ums_id_certificate", args=[ums.pk]))
    assert response.content.decode() == ums_identity().ums_id_certificate_pem
    assert response["Content-Disposition"] == 'attachment; filename="ALD_Portal_UMS.crt"'
    exported = reader_client.get(reverse("devices:ums_certificate"))
    assert exported.content == response.content  # what the UMS exports is what the ILP holds


def test_register_a_ums_id_from_its_certificate(ilp_client, ums):
    _, cert, fingerprint = make_ums_key_pair("UMS Hamburg")
    response = ilp_client.post(
        reverse("licensing:ums_id_register"),
        {"company": ums.company_id, "name": "UMS Hamburg", "certificate": cert},
    )
    assert response.status_code == 302
    assert UmsId.objects.get(name="UMS Hamburg").fingerprint == fingerprint
    again = ilp_client.post(
        reverse("licensing:ums_id_register"),
        {"company": ums.company_id, "name": "Again", "certificate": cert},
    )
    assert (
        again.status_code == 400 and f"UMS ID {fingerprint} is registered already." in again.content.decode()
    )


def _many_ums_ids(n):
    company = f.company()
    for i in range(n):
        _, cert, fingerprint = make_ums_key_pair(f"UMS {i}")
        u = UmsId.objects.create(
            company=company, fingerprint=fingerprint, name=f"UMS {i:03d}", certificate_pem=cert
        )
        f.pack(f"WE-Q{i:04d}", total=3, assign=False, assigned_ums=u)


def test_queries_do_not_grow_with_ums_ids(reader_client, ums):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert reader_client.get(UMS_IDS).status_code == 200
        return len(ctx.captured_queries)

    _many_ums_ids(2)
    small = count()
    _many_ums_ids(0)
    for i in range(2, 30):
        _, cert, fingerprint = make_ums_key_pair(f"UMS {i}")
        u = UmsId.objects.create(
            company=f.company(), fingerprint=fingerprint, name=f"UMS {i:03d}", certificate_pem=cert
        )
        f.pack(f"WE-Q{i:04d}", total=3, assign=False, assigned_ums=u)
    assert UmsId.objects.count() == 31
    assert count() == small <= 10


# --- Subscription keys: ALD tokens ---------------------------------------------------------------------


@pytest.fixture
def key():
    return SubscriptionKey.objects.create(company=f.company(), key="SK-0001")


def test_generate_shows_the_token_once_and_keeps_only_its_hash(ilp_client, key):
    response = ilp_client.post(reverse("licensing:ald_token_action", args=[key.pk, "generate"]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = response.context["new_token"]["token"]
    assert (
        token.startswith("ald_")
        and f'<code class="token" style="word-break:break-all">{token}</code>' in response.content.decode()
    )
    row = AldToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and row.created_by == "ilp-admin"
    assert token not in str(list(AldToken.objects.values())) + str(list(LicensePortalAction.objects.values()))
    later = ilp_client.get(KEYS).content.decode()
    assert token not in later and f"<code>{row.hint}…</code>" in later
    assert authenticate_token(token).subscription_key_id == key.pk
    twice = ilp_client.post(reverse("licensing:ald_token_action", args=[key.pk, "generate"]))
    assert twice.status_code == 400 and "has an ALD token already" in twice.content.decode()
    assert AldToken.objects.count() == 1


def test_delete_revokes_the_token_and_issues_a_new_one(ilp_client, key):
    old = ilp_client.post(reverse("licensing:ald_token_action", args=[key.pk, "generate"])).context[
        "new_token"
    ]
    response = ilp_client.post(reverse("licensing:ald_token_action", args=[key.pk, "delete"]))
    new = response.context["new_token"]
    assert new["token"] != old["token"] and new["token"] in response.content.decode()
    with pytest.raises(LicenseServiceError) as refused:
        authenticate_token(old["token"])
    assert refused.value.code == LicenseErrorCode.REVOKED_CREDENTIAL
    assert authenticate_token(new["token"]).subscription_key_id == key.pk
    revoked = AldToken.objects.get(revoked_at__isnull=False)
    assert revoked.revoked_by == "ilp-admin"
    assert LicensePortalAction.objects.filter(action="TOKEN_DELETED", actor="ilp-admin").count() == 1


def test_a_reader_may_not_make_or_delete_tokens(reader_client, key):
    for name in ("generate", "delete"):
        assert (
            reader_client.post(reverse("licensing:ald_token_action", args=[key.pk, name])).status_code == 403
        )
    assert not AldToken.objects.exists()
    assert "Generate ALD token" not in reader_client.get(KEYS).content.decode()


# --- the UMS side: ALD tokens and the proxy on Licenses > Deployment -----------------------------------


@pytest.fixture
def ums_admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_register_an_ald_token_in_the_ums_and_its_packs_appear(ums_admin_client, key):
    f.pack("WE-TOKEN", total=3, assign=False, subscription_key=key)
    from licensing.services import generate_ald_token

    token = generate_ald_token(key, actor="partner")[1]
    response = ums_admin_client.post(DEPLOYMENT, {"action": "register_token", "token": token}, follow=True)
    assert f"ALD token {token[:10]}… registered" in response.content.decode()
    assert token not in response.content.decode()
    assert UmsAldToken.objects.get().token == token
    assert ums_admin_client.post(DEPLOYMENT, {"action": "refresh"}).status_code == 302
    from devices.models import RegisteredPack

    assert RegisteredPack.objects.get().pack_id == "WE-TOKEN"
    bad = ums_admin_client.post(
        DEPLOYMENT, {"action": "register_token", "token": "ald_" + "q" * 40}, follow=True
    )
    assert "was not accepted: bad_credential" in bad.content.decode()
    assert UmsAldToken.objects.count() == 1


def test_proxy_settings_are_saved_and_the_password_is_never_shown(ums_admin_client):
    data = {
        "ald_enabled": "on",
        "sweep_minutes": "5",
        "exchange_days": "7",
        "notify_free_below": "10",
        "proxy_enabled": "on",
        "proxy_host": "proxy.corp.example",
        "proxy_port": "3128",
        "proxy_user": "ums",
        "proxy_password": "Geheim-123",
    }
    assert ums_admin_client.post(DEPLOYMENT, data).status_code == 302
    conf = DeploymentSettings.load()
    assert (conf.proxy_host, conf.proxy_port, conf.proxy_user, conf.proxy_password) == (
        "proxy.corp.example",
        3128,
        "ums",
        "Geheim-123",
    )
    page = ums_admin_client.get(DEPLOYMENT).content.decode()
    assert "Geheim-123" not in page and "Geheim-123" not in str(list(DeploymentEvent.objects.values()))
    assert ums_admin_client.post(DEPLOYMENT, {**data, "proxy_password": ""}).status_code == 302
    assert DeploymentSettings.load().proxy_password == "Geheim-123"  # empty keeps it
    bad = ums_admin_client.post(DEPLOYMENT, {**data, "proxy_port": "70000", "proxy_host": "http://x"})
    assert bad.status_code == 200
    errors = bad.context["form"].errors
    assert errors["proxy_port"] == ["Ensure this value is less than or equal to 65535."]
    assert errors["proxy_host"] == [
        "Proxy host 'http://x' must be a host name or address only, without scheme, port or user."
    ]
    assert DeploymentSettings.load().proxy_port == 3128


def test_ums_id_command_shows_exports_and_renews(tmp_path):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    call_command("ums_id", "--export", str(tmp_path / "ums.crt"), stdout=out)
    conf = ums_identity()
    assert f"SHA-256 fingerprint: {conf.ums_id_fingerprint}" in out.getvalue()
    assert (tmp_path / "ums.crt").read_text() == conf.ums_id_certificate_pem
    call_command("ums_id", "--new", stdout=out)
    assert DeploymentSettings.load().ums_id_fingerprint != conf.ums_id_fingerprint
    with pytest.raises(CommandError, match="--export /nonexistent/dir/x.crt: No such file or directory"):
        call_command("ums_id", "--export", "/nonexistent/dir/x.crt", stdout=out)


def test_archived_packs_and_packs_of_another_company_are_not_assigned(ilp_client, ums):
    f.pack("WE-ARCHV", total=2, status="ARCHIVED", assign=False)
    f.pack("WE-OTHER", total=2, assign=False, company=f.company("Other AG", "GA-OTHER"))
    archived = ilp_client.post(action(ums, "assign"), {"packs": ["WE-ARCHV"]})
    assert archived.status_code == 400
    assert "Pack WE-ARCHV is archived and cannot be assigned." in archived.content.decode()
    foreign = ilp_client.post(action(ums, "assign"), {"packs": ["WE-OTHER"]})
    assert "Pack WE-OTHER belongs to another company than UMS ID ALD Portal UMS." in foreign.content.decode()
    assert not ProductPack.objects.filter(
        pack_id__in=["WE-ARCHV", "WE-OTHER"], assigned_ums__isnull=False
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_test_connection_says_what_the_licensing_service_answers(ums_admin_client, settings, live_server):
    f.pack("WE-AAAAA", total=5)
    response = ums_admin_client.post(DEPLOYMENT, {"action": "test_connection"}, follow=True)
    assert (
        "The licensing service at this portal (embedded) answers: 1 pack(s) through the UMS ID, 0 through ALD tokens."
        in response.content.decode()
    )
    settings.ILS_URL = live_server.url
    response = ums_admin_client.post(DEPLOYMENT, {"action": "test_connection"}, follow=True)
    assert f"The licensing service at {live_server.url} answers: 1 pack(s)" in response.content.decode()
    UmsId.objects.update(certificate_pem="")  # the License Portal lost the certificate
    response = ums_admin_client.post(DEPLOYMENT, {"action": "test_connection"}, follow=True)
    said = response.content.decode()
    assert "The licensing service refused this UMS: bad_credential: UMS ID" in said
    assert "cannot be reached" not in said


@pytest.mark.parametrize("company", ["²", "9" * 40, "abc"])
def test_registering_for_a_company_that_is_no_id_is_refused_by_name(ilp_client, ums, company):
    _, cert, _fingerprint = make_ums_key_pair("UMS Odd")
    response = ilp_client.post(
        reverse("licensing:ums_id_register"), {"company": company, "name": "UMS Odd", "certificate": cert}
    )
    assert response.status_code == 400
    assert f"Company &#x27;{company}&#x27; does not exist." in response.content.decode()
    assert not UmsId.objects.filter(name="UMS Odd").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("U" * 201, "The UMS ID name is 201 characters long; at most 200 are allowed."),
        ("   ", "The UMS ID name must not be empty."),
    ],
)
def test_registering_with_a_name_too_long_or_empty_is_refused_by_name(ilp_client, ums, name, message):
    """Not cut to 200 characters behind the user's back: refused, as renaming refuses it."""
    _, cert, fingerprint = make_ums_key_pair("UMS Long")
    response = ilp_client.post(
        reverse("licensing:ums_id_register"), {"company": ums.company_id, "name": name, "certificate": cert}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not UmsId.objects.filter(fingerprint=fingerprint).exists()
