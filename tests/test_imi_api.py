"""The IMI v3 API over real HTTP against a live server, called with plain ``requests`` the way IMI
scripts call it: shapes, IDs as strings, bare arrays, trailing slashes, ``null`` bodies, ITG errors."""

import base64
import datetime
import logging
import re

import pytest
import requests

from ald_portal import clock
from devices.models import (
    DeploymentEvent,
    Device,
    DeviceCommand,
    DeviceLicense,
    Directory,
    ImiLoginFailure,
    ImiSession,
)
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)
JSON = {"content-type": "application/json"}
ADMIN = ("imi-admin", "pw-admin-123")
VIEWER = ("viewer", "pw-viewer-123")


@pytest.fixture(autouse=True)
def tasks_run_in_process(monkeypatch):
    """django-q2's sync mode: the ALD task a new device queues runs through django-q2's worker in
    the server's own process, when the request's transaction commits."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", True)


@pytest.fixture
def users(django_user_model):
    django_user_model.objects.create_superuser(ADMIN[0], "admin@example.com", ADMIN[1])
    django_user_model.objects.create_user(VIEWER[0], password=VIEWER[1])


@pytest.fixture
def api(live_server, users):
    return live_server.url + "/umsapi/v3/"


@pytest.fixture
def fleet():
    fw = f.firmware("11.08.440.01")
    berlin = f.directory("Berlin")
    sales = f.directory("Sales", parent=berlin)
    a = f.device(1, fw=fw, directory=sales, last_ip="10.0.0.1")
    Device.objects.filter(pk=a.pk).update(
        details={"cpuSpeed": "1200", "memorySize": 7892, "productId": "UD3-LX 60", "networkName": "ITC-A"},
        last_contact=clock.now() - datetime.timedelta(minutes=2),
    )
    b = f.device(2, fw=fw, moved_to_bin=True)
    return {"fw": fw, "berlin": berlin, "sales": sales, "a": a, "b": b}


def login(api, user=ADMIN):
    session = requests.Session()
    response = session.post(api + "login", auth=user, headers=JSON, data="null", timeout=10)
    assert response.status_code == 200, response.text
    return session, response


def error(response, status, code, message=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errorCode"] == code, body
    assert set(body) == {"message", "errorCode", "time", "stackTrace"}
    assert body["stackTrace"] == ""
    if message is not None:
        assert body["message"] == message
    return body


def test_serverstatus_needs_no_login(api, fleet):
    response = requests.get(api + "serverstatus", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"\d+(\.\d+)+", body["rmGuiServerVersion"])
    assert body["links"] == [] and body["server"].startswith("localhost:")
    assert len(body["serverUUID"]) == 36
    # the same UMS answers with the same UUID
    assert requests.get(api + "serverstatus/", timeout=10).json()["serverUUID"] == body["serverUUID"]


def test_an_imi_script_end_to_end(api, fleet):
    f.ald_on()
    f.pack("WE-1A2B3", total=5)
    f.register_all()

    error(requests.get(api + "thinclients", timeout=10), 401, "ITG-0B003", "No session ID found.")

    session, response = login(api)
    session_id = session.cookies["JSESSIONID"]
    assert response.json() == {"message": f"JSESSIONID={session_id}"}
    assert re.fullmatch(r"[0-9A-F]{32}", session_id)
    cookie = response.headers["Set-Cookie"]
    assert "Path=/umsapi/" in cookie and "HttpOnly" in cookie and "sessionid" not in cookie

    # the list: a bare array, string IDs, recycle-bin devices included; null body on GET
    listed = session.get(api + "thinclients/", headers=JSON, data="null", timeout=10).json()
    a, b = fleet["a"], fleet["b"]
    assert listed == [
        {
            "unitID": a.unit_id,
            "mac": a.mac,
            "firmwareID": str(fleet["fw"].pk),
            "lastIP": "10.0.0.1",
            "batteryLevel": -1,
            "id": str(a.pk),
            "name": a.name,
            "parentID": str(fleet["sales"].pk),
            "movedToBin": False,
            "objectType": "tc",
            "links": [],
        },
        {
            "unitID": b.unit_id,
            "mac": b.mac,
            "firmwareID": str(fleet["fw"].pk),
            "lastIP": "",
            "batteryLevel": -1,
            "id": str(b.pk),
            "name": b.name,
            "parentID": "-1",
            "movedToBin": True,
            "objectType": "tc",
            "links": [],
        },
    ]

    # create: unit ID = MAC in any common form; ALD licenses the new device once it is committed
    created = session.put(
        api + "thinclients/",
        json={
            "mac": "00:e0:c5:aa:bb:01",
            "firmwareID": str(fleet["fw"].pk),
            "name": "RECEPTION-1",
            "parentID": str(fleet["berlin"].pk),
            "site": "Main campus",
        },
        timeout=30,
    )
    assert created.status_code == 200, created.text
    new_id = created.json()["id"]
    assert created.json() == {
        "message": "Thin client successfully inserted.",
        "id": new_id,
        "name": "RECEPTION-1",
        "parentID": str(fleet["berlin"].pk),
    }
    lic = DeviceLicense.objects.get(device_id=int(new_id))
    assert (lic.unit_id, lic.pack_id, lic.status) == ("00E0C5AABB01", "WE-1A2B3", "CURRENT")

    detail = session.get(api + f"thinclients/{new_id}?facets=details", timeout=10).json()
    assert (detail["unitID"], detail["mac"], detail["site"], detail["name"]) == (
        "00E0C5AABB01",
        "00E0C5AABB01",
        "Main campus",
        "RECEPTION-1",
    )
    assert detail["registrationDate"] == "03.12.2026 12:00:00"

    # update
    updated = session.put(api + f"thinclients/{new_id}", json={"name": "reception thin client"}, timeout=10)
    assert updated.json() == {"message": "Update successful"}
    assert Device.objects.get(pk=int(new_id)).name == "reception thin client"

    # commands, recorded with who sent them
    sent = session.post(
        api + "thinclients?command=reboot",
        data=f'[{{"id":"{new_id}", "type":"tc"}},{{"id":"{a.pk}","type":"tc"}}]',
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    executed = sent.json()["CommandExecList"]
    assert [(e["id"], e["mac"], e["message"], e["state"]) for e in executed] == [
        (new_id, "00E0C5AABB01", "OK", "SUCCESS"),
        (str(a.pk), a.mac, "OK", "SUCCESS"),
    ]
    assert executed[0]["execID"] == executed[1]["execID"] and executed[0]["exectime"].isdigit()
    assert sorted(DeviceCommand.objects.values_list("device_id", "command", "actor")) == sorted(
        [(int(new_id), "reboot", "imi-admin"), (a.pk, "reboot", "imi-admin")]
    )
    for command in ("shutdown", "wakeup", "settings2tc"):
        r = session.post(
            api + f"thinclients/?command={command}", json=[{"id": new_id, "type": "tc"}], timeout=10
        )
        assert r.json()["CommandExecList"][0]["state"] == "SUCCESS"
    assert DeviceCommand.objects.filter(device_id=int(new_id)).count() == 4

    # directories: create, rename, move into, children, delete only when empty
    made = session.put(api + "directories/tcdirectories/", json={"name": "Test"}, timeout=10).json()
    dir_id = made["id"]
    assert made == {"message": "Directory successfully inserted.", "id": dir_id, "name": "Test"}
    renamed = session.put(api + f"directories/tcdirectories/{dir_id}", json={"name": "Reception"}, timeout=10)
    assert renamed.json() == {"message": "Updated directory successfully."}
    moved = session.put(
        api + f"directories/tcdirectories/{dir_id}?operation=move",
        json=[{"id": new_id, "type": "tc"}, {"id": "999999", "type": "tc"}],
        timeout=10,
    )
    assert moved.json() == [
        {"id": new_id, "results": "successful"},
        {"id": "999999", "results": "does_not_exist"},
    ]
    one = session.get(api + f"directories/tcdirectories/{dir_id}/?facets=children", timeout=10).json()
    assert one["name"] == "Reception" and one["parentID"] == "-1"
    assert one["DirectoryChildren"] == [
        {"objectType": "tc", "id": new_id, "link": {"rel": "tc", "href": f"{api}thinclients/{new_id}"}}
    ]
    assert one["links"] == [
        {"rel": "self", "href": f"{api}directories/tcdirectories/{dir_id}"},
        {"rel": "Parent", "href": "root"},
    ]
    refused = session.delete(api + f"directories/tcdirectories/{dir_id}", timeout=10)
    error(refused, 400, "ITG-0A006", f"Directory with ID <{dir_id}> is not empty. Remove content first.")
    listed_dirs = session.get(api + "directories/tcdirectories?facets=children", timeout=10).json()
    assert [d["name"] for d in listed_dirs] == ["Berlin", "Sales", "Reception"]
    berlin = listed_dirs[0]
    assert berlin["DirectoryChildren"][0]["id"] == str(fleet["sales"].pk)
    assert "DirectoryChildren" not in session.get(api + "directories/tcdirectories", timeout=10).json()[0]

    # delete the device (hard delete), then the now empty directory
    deleted = session.delete(api + f"thinclients/{new_id}", timeout=10).json()["CommandExecList"][0]
    assert (deleted["id"], deleted["mac"], deleted["state"]) == (new_id, "00E0C5AABB01", "SUCCESS")
    assert not Device.objects.filter(pk=int(new_id)).exists()
    gone = session.delete(api + f"directories/tcdirectories/{dir_id}/", timeout=10)
    assert gone.json() == {"message": "Deletion successful."}
    assert not Directory.objects.filter(pk=int(dir_id)).exists()

    # firmwares: list wrapped, single bare
    fws = session.get(api + "firmwares", timeout=10).json()
    assert fws == {
        "FwResource": [
            {
                "id": str(fleet["fw"].pk),
                "product": "IGEL OS 11",
                "version": "11.08.440.01",
                "firmwareType": "LX",
                "links": [],
            }
        ]
    }
    assert session.get(api + f"firmwares/{fleet['fw'].pk}/", timeout=10).json() == fws["FwResource"][0]

    # every change is an executed action naming the user
    actions = list(
        DeploymentEvent.objects.filter(actor="imi-admin").order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "device_created",
        "device_changed",
        "command",
        "command",
        "command",
        "command",
        "command",
        "directory",  # created
        "directory",  # renamed
        "directory",  # device moved
        "delete_device",
        "directory",  # deleted
    ]

    out = session.post(api + "logout", timeout=10)
    assert out.json() == {"message": "Logout successful"}
    again = requests.get(api + "thinclients", cookies={"JSESSIONID": session_id}, timeout=10)
    error(again, 401, "ITG-0B004", f"No session found for requested session ID {session_id}.")


def test_message_copied_verbatim_into_a_cookie_header_works(api, fleet):
    _, response = login(api)
    header = {"Cookie": response.json()["message"], **JSON}
    assert requests.get(api + "thinclients", headers=header, timeout=10).status_code == 200


def test_session_slides_for_30_minutes(api, fleet):
    session, _ = login(api)
    start = clock.now()
    for minutes in (29, 58, 87):  # each request starts the 30 minutes again
        clock.freeze(start + datetime.timedelta(minutes=minutes))
        assert session.get(api + "thinclients", timeout=10).status_code == 200
    clock.freeze(start + datetime.timedelta(minutes=87 + 30))
    error(session.get(api + "thinclients", timeout=10), 401, "ITG-0B004")
    assert not ImiSession.objects.exists()


def test_basic_auth_on_each_request_without_login(api, fleet):
    response = requests.get(api + "thinclients?facets=online", auth=ADMIN, timeout=10)
    assert response.status_code == 200
    assert [d["online"] for d in response.json()] == [True, False]
    error(requests.get(api + "thinclients", auth=(ADMIN[0], "wrong"), timeout=10), 401, "ITG-0B002")


def test_the_portal_login_cookie_does_not_open_the_api(api, fleet, client, live_server):
    client.login(username=ADMIN[0], password=ADMIN[1])
    cookies = {"sessionid": client.cookies["sessionid"].value}
    error(requests.get(api + "thinclients", cookies=cookies, timeout=10), 401, "ITG-0B003")


def test_read_only_user_reads_but_may_not_change(api, fleet):
    session, _ = login(api, VIEWER)
    assert session.get(api + "thinclients", timeout=10).status_code == 200
    assert session.get(api + "directories/tcdirectories", timeout=10).status_code == 200
    attempts = [
        session.put(api + "thinclients", json={"mac": "00E0C5AABB09", "firmwareID": str(fleet["fw"].pk)}),
        session.put(api + f"thinclients/{fleet['a'].pk}", json={"name": "x"}),
        session.delete(api + f"thinclients/{fleet['a'].pk}"),
        session.post(api + "thinclients?command=reboot", json=[{"id": str(fleet["a"].pk), "type": "tc"}]),
        session.put(api + "directories/tcdirectories/", json={"name": "x"}),
        session.put(api + f"directories/tcdirectories/{fleet['sales'].pk}", json={"name": "x"}),
        session.delete(api + f"directories/tcdirectories/{fleet['sales'].pk}"),
    ]
    for response in attempts:
        body = error(response, 401, "ITG-0B005")
        assert body["message"].startswith("Access denied.")
    assert Device.objects.count() == 2 and Directory.objects.count() == 2
    assert not DeviceCommand.objects.exists() and not DeploymentEvent.objects.exists()


def bad_requests(fleet):
    fw, a, b, sales = str(fleet["fw"].pk), fleet["a"], fleet["b"], fleet["sales"]
    return [
        ("GET", "thinclients/999999", None, 400, "ITG-0A001", "Thin client with ID 999999 not found."),
        (
            "GET",
            "thinclients/abc",
            None,
            400,
            "ITG-0A010",
            "Number format error: tcId 'abc' is not a number.",
        ),
        ("PUT", "thinclients/999999", {"name": "x"}, 400, "ITG-0A001", None),
        ("PUT", f"thinclients/{b.pk}", {"name": "x"}, 400, "ITG-0A018", None),
        ("PUT", f"thinclients/{a.pk}", {"colour": "red"}, 400, "ITG-0A013", None),
        ("PUT", f"thinclients/{a.pk}", {"name": ""}, 400, "ITG-0A024", "Invalid thin client name: ''"),
        (
            "PUT",
            f"thinclients/{a.pk}",
            {"site": 12},
            400,
            "ITG-0A004",
            "Invalid request body: site 12 must be a string",
        ),
        ("PUT", "thinclients", {"firmwareID": fw}, 400, "ITG-0A007", "No MAC defined."),
        (
            "PUT",
            "thinclients",
            {"mac": "00E0C5", "firmwareID": fw},
            400,
            "ITG-0A014",
            "MAC must be 12 characters long: mac '00E0C5' is not 12 hexadecimal digits.",
        ),
        ("PUT", "thinclients", {"mac": "00E0C5AABB0Z", "firmwareID": fw}, 400, "ITG-0A014", None),
        ("PUT", "thinclients", {"mac": "00E0C5AABB09"}, 400, "ITG-0A009", "No firmware defined."),
        (
            "PUT",
            "thinclients",
            {"mac": "00E0C5AABB09", "firmwareID": "777"},
            400,
            "ITG-0A015",
            "Firmware with ID 777 does not exist.",
        ),
        ("PUT", "thinclients", {"mac": "00E0C5AABB09", "firmwareID": "x7"}, 400, "ITG-0A010", None),
        (
            "PUT",
            "thinclients",
            {"mac": "00E0C5AABB09", "firmwareID": fw, "parentID": "4242"},
            400,
            "ITG-0A016",
            "Parent with ID 4242 does not exist.",
        ),
        ("PUT", "thinclients", {"mac": a.mac.lower(), "firmwareID": fw}, 400, "ITG-0A008", None),
        ("PUT", "thinclients", ["not", "an", "object"], 400, "ITG-0A004", None),
        (
            "POST",
            "thinclients?command=selfdestruct",
            [{"id": str(a.pk), "type": "tc"}],
            400,
            "ITG-0A003",
            "selfdestruct is an invalid command.",
        ),
        ("POST", "thinclients?command=reboot", [], 400, "ITG-0A012", "IDList is empty."),
        (
            "POST",
            "thinclients?command=reboot&command=shutdown",
            [{"id": str(a.pk), "type": "tc"}],
            400,
            "ITG-0A003",
            "reboot and shutdown is an invalid command.",
        ),
        ("POST", "thinclients?command=reboot", [{"id": "999999", "type": "tc"}], 400, "ITG-0A001", None),
        ("POST", "thinclients?command=reboot", [{"id": str(b.pk), "type": "tc"}], 400, "ITG-0A018", None),
        (
            "POST",
            "thinclients?command=reboot",
            [{"id": str(a.pk), "type": "profile"}],
            400,
            "ITG-0A004",
            None,
        ),
        ("DELETE", "thinclients", None, 400, "ITG-0A011", "Request method 'DELETE' not supported"),
        ("POST", "firmwares", None, 400, "ITG-0A011", "Request method 'POST' not supported"),
        ("GET", "firmwares/99", None, 400, "ITG-0A015", "Firmware with ID 99 does not exist."),
        (
            "GET",
            "directories/tcdirectories/999",
            None,
            400,
            "ITG-0A002",
            "No target directory with ID 999 found.",
        ),
        ("PUT", f"directories/tcdirectories/{sales.pk}", {}, 400, "ITG-0A013", None),
        (
            "PUT",
            "directories/tcdirectories/999?operation=move",
            [{"id": str(a.pk), "type": "tc"}],
            400,
            "ITG-0A002",
            None,
        ),
        (
            "PUT",
            f"directories/tcdirectories/{sales.pk}?operation=move",
            [{"id": str(fleet["berlin"].pk), "type": "tcdirectory"}],
            400,
            "ITG-0A004",
            None,
        ),
        ("DELETE", f"directories/tcdirectories/{fleet['berlin'].pk}", None, 400, "ITG-0A006", None),
        ("GET", "thinclients?facets=shadow", None, 404, "ITG-0A020", None),
        ("GET", "profiles", None, 404, "ITG-0A020", None),
    ]


def test_bad_requests_get_the_itg_error_and_change_nothing(api, fleet):
    session, _ = login(api)
    before = (
        Device.objects.count(),
        Directory.objects.count(),
        list(Device.objects.values_list("name", "directory_id")),
    )
    for method, path, body, status, code, message in bad_requests(fleet):
        response = session.request(method, api + path, json=body, timeout=10)
        error(response, status, code, message)
    assert (
        Device.objects.count(),
        Directory.objects.count(),
        list(Device.objects.values_list("name", "directory_id")),
    ) == before
    assert not DeviceCommand.objects.exists()
    assert not DeploymentEvent.objects.exists()


def test_unreadable_json_is_415(api, fleet):
    session, _ = login(api)
    response = session.put(api + "thinclients", data="{mac: nope", headers=JSON, timeout=10)
    body = error(response, 415, "ITG-0A005")
    assert body["message"].startswith("Could not read JSON: ")


CREATE_WITH_ATTRIBUTE = '{"mac": "00E0C5AABB09", "firmwareID": "%s", "deviceAttributes": [%s]}'


@pytest.mark.parametrize(
    "attributes, message",
    [
        (
            [{"identifier": f"a{i}", "value": "1"} for i in range(201)],
            "deviceAttributes has 201 entries; at most 200",
        ),
        (
            [{"identifier": "x" * 101, "value": "1"}],
            "deviceAttributes[0].identifier is longer than 100 characters",
        ),
        (
            [{"identifier": "rack", "value": "v" * 1001}],
            "deviceAttributes[0].value is longer than 1000 characters",
        ),
        (
            [{"identifier": "rack", "value": 2**63}],
            "deviceAttributes[0].value 9223372036854775808... is beyond",
        ),
    ],
)
def test_device_attributes_beyond_what_a_ums_holds_are_refused(api, fleet, attributes, message):
    session, _ = login(api)
    response = session.put(
        api + f"thinclients/{fleet['a'].pk}", json={"deviceAttributes": attributes}, timeout=10
    )
    assert message in error(response, 400, "ITG-0A004")["message"]
    assert Device.objects.get(pk=fleet["a"].pk).details.get("deviceAttributes") is None
    largest = [{"identifier": "n" * 100, "value": 2**63 - 1}, {"identifier": "s", "value": "v" * 1000}]
    ok = session.put(api + f"thinclients/{fleet['a'].pk}", json={"deviceAttributes": largest}, timeout=10)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "attribute, status, code, message",
    [
        ('{"identifier": "rack", "value": NaN}', 415, "ITG-0A005", "NaN is not a JSON number"),
        ('{"identifier": "rack", "value": -Infinity}', 415, "ITG-0A005", "-Infinity is not a JSON number"),
        ('{"identifier": "rack", "value": 1e999}', 415, "ITG-0A005", "number 1e999 is out of range"),
        (
            '{"identifier": "rack", "value": "A\\u0000B"}',
            400,
            "ITG-0A004",
            "deviceAttributes.0.value contains a NUL character",
        ),
        (
            '{"identifier": "r\\u0000", "value": "1"}',
            400,
            "ITG-0A004",
            "deviceAttributes.0.identifier contains a NUL character",
        ),
        (
            '{"identifier": "rack", "value": "\\ud800"}',
            400,
            "ITG-0A004",
            "deviceAttributes.0.value contains a NUL character or a lone surrogate",
        ),
    ],
)
def test_device_attributes_json_cannot_store_are_refused_by_name(
    api, fleet, attribute, status, code, message
):
    """NaN, Infinity and 1e999 are no JSON numbers; NUL and lone surrogates no database stores. Each
    is refused naming it, on create and on update, and nothing changes (not a 500, not a false
    "MAC already registered")."""
    session, _ = login(api)
    before = Device.objects.count()
    created = session.put(
        api + "thinclients",
        data=CREATE_WITH_ATTRIBUTE % (fleet["fw"].pk, attribute),
        headers=JSON,
        timeout=10,
    )
    assert message in error(created, status, code)["message"]
    updated = session.put(
        api + f"thinclients/{fleet['a'].pk}",
        data='{"deviceAttributes": [%s]}' % attribute,
        headers=JSON,
        timeout=10,
    )
    assert message in error(updated, status, code)["message"]
    assert Device.objects.count() == before
    assert Device.objects.get(pk=fleet["a"].pk).details.get("deviceAttributes") is None
    assert not DeploymentEvent.objects.exists()
    ok = session.put(
        api + "thinclients",
        data=CREATE_WITH_ATTRIBUTE % (fleet["fw"].pk, '{"identifier": "rack", "value": 1.5e3}'),
        headers=JSON,
        timeout=10,
    )
    assert ok.status_code == 200, ok.text
    assert Device.objects.get(mac="00E0C5AABB09").details["deviceAttributes"] == [
        {"identifier": "rack", "value": 1500.0}
    ]


def test_directory_named_in_a_pack_condition_is_not_deleted(api, fleet):
    f.pack("EMP-1A2B3", product_type="EMP")
    empty = f.directory("Empty")
    f.register_all(conditions={"EMP-1A2B3": [empty]})
    session, _ = login(api)
    response = session.delete(api + f"directories/tcdirectories/{empty.pk}", timeout=10)
    error(response, 400, "ITG-0A023")
    assert "EMP-1A2B3" in response.json()["message"]
    assert Directory.objects.filter(pk=empty.pk).exists()


def test_moving_a_directory_and_back_to_the_root(api, fleet):
    session, _ = login(api)
    target = session.put(api + "directories/tcdirectories", json={"name": "Hamburg"}, timeout=10).json()["id"]
    sales = str(fleet["sales"].pk)
    moved = session.put(
        api + f"directories/tcdirectories/{target}?operation=move",
        json=[{"id": sales, "type": "tcdirectory"}],
        timeout=10,
    )
    assert moved.json() == [{"id": sales, "results": "successful"}]
    assert Directory.objects.get(pk=int(sales)).parent_id == int(target)
    back = session.put(
        api + "directories/tcdirectories/-1?operation=move", json=[{"id": sales, "type": "tcdirectory"}]
    )
    assert back.json() == [{"id": sales, "results": "successful"}]
    assert Directory.objects.get(pk=int(sales)).parent_id is None


def test_details_facet_types(api, fleet):
    session, _ = login(api)
    one = session.get(api + f"thinclients/{fleet['a'].pk}?facets=details", timeout=10).json()
    assert one["cpuSpeed"] == 1200 and one["memorySize"] == 7892 and one["flashSize"] == 0
    assert one["networkName"] == "ITC-A" and one["productId"] == ""  # product_id column is empty
    assert isinstance(one["movedToBin"], bool) and one["lastUser"] == ""
    assert one["lastContact"] == "2026-12-03 11:58"
    short = session.get(api + f"thinclients/{fleet['a'].pk}", timeout=10).json()
    assert "cpuSpeed" not in short and short["lastUser"] == ""


def test_repeated_failed_logins_are_slowed_down_and_logged(api, fleet, caplog):
    caplog.set_level(logging.WARNING, logger="devices.imi")
    for _ in range(4):
        response = requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
        error(response, 401, "ITG-0B002", "Invalid login credentials.")
        assert "Retry-After" not in response.headers
    fifth = requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
    error(fifth, 401, "ITG-0B002")
    assert fifth.headers["Retry-After"] == "31"  # the failure that locks says so already
    # locked: even the right password is refused, and says when to try again
    locked = requests.post(api + "login", auth=ADMIN, timeout=10)
    error(locked, 401, "ITG-0B002")
    assert locked.headers["Retry-After"] == "31"
    assert ImiLoginFailure.objects.get().failures == 5
    logged = [r.getMessage() for r in caplog.records if r.name == "devices.imi"]
    assert "IMI login failed for user 'imi-admin' from 127.0.0.1 (1 failure(s) in a row)" in logged
    assert any("(5 failure(s) in a row); address locked out for 30 s" in m for m in logged)
    assert any("refused: locked out" in m for m in logged)

    # after the lock a further failure locks twice as long
    clock.freeze(clock.now() + datetime.timedelta(seconds=31))
    requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
    assert requests.post(api + "login", auth=ADMIN, timeout=10).headers["Retry-After"] == "61"
    # Basic auth on a request counts the same
    clock.freeze(clock.now() + datetime.timedelta(seconds=61))
    requests.get(api + "thinclients", auth=(ADMIN[0], "guess"), timeout=10)
    assert ImiLoginFailure.objects.get().failures == 7
    assert requests.post(api + "login", auth=ADMIN, timeout=10).headers["Retry-After"] == "121"

    # when the lock ends the right password works and the count starts again
    clock.freeze(clock.now() + datetime.timedelta(seconds=121))
    login(api)
    assert not ImiLoginFailure.objects.exists()


def test_a_login_as_another_account_does_not_wipe_the_count(api, fleet):
    """Guessing at one account from an address, with good logins as another account in between,
    still locks the address after the fifth failure."""
    for _ in range(2):
        requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
    login(api, VIEWER)
    for _ in range(2):
        requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
    requests.get(api + "thinclients", auth=VIEWER, timeout=10)  # direct authorization succeeds too
    assert ImiLoginFailure.objects.get().failures_by_user == {ADMIN[0]: 4}
    error(requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10), 401, "ITG-0B002")
    locked = requests.post(api + "login", auth=VIEWER, timeout=10)
    error(locked, 401, "ITG-0B002")
    assert locked.headers["Retry-After"] == "31"
    row = ImiLoginFailure.objects.get()
    assert (row.failures, row.failures_by_user, row.checks_running) == (5, {ADMIN[0]: 5}, 0)


def test_a_right_password_forgets_only_that_users_failures(api, fleet):
    requests.post(api + "login", auth=(VIEWER[0], "typo"), timeout=10)
    for _ in range(3):
        requests.post(api + "login", auth=(ADMIN[0], "guess"), timeout=10)
    login(api, VIEWER)
    assert ImiLoginFailure.objects.get().failures_by_user == {ADMIN[0]: 3}
    login(api, ADMIN)
    assert not ImiLoginFailure.objects.exists()


def test_a_check_left_running_by_a_killed_process_runs_out(api, fleet, monkeypatch):
    """A process killed during a password check never writes its outcome; after a minute its check
    no longer counts as running."""
    monkeypatch.setattr("devices.imi.auth.WAIT_FOR_TURN", 0.2)
    ImiLoginFailure.objects.create(
        address="127.0.0.1",
        failures=4,
        failures_by_user={ADMIN[0]: 4},
        checks_running=1,
        last_check_at=clock.now(),
    )
    waiting = requests.post(api + "login", auth=ADMIN, timeout=30)
    error(waiting, 401, "ITG-0B002")  # its turn never came (the test waits 0.2 s, not 10)
    assert waiting.headers["Retry-After"] == "1"
    clock.freeze(clock.now() + datetime.timedelta(seconds=61))
    login(api)
    assert not ImiLoginFailure.objects.exists()


@pytest.fixture
def slow_password_checks(monkeypatch):
    """Each password check takes 0.3 s, as a real password hash does, and is counted."""
    import threading
    import time

    from devices.imi import auth

    checked = []
    lock = threading.Lock()
    real = auth.authenticate

    def authenticate(request, **credentials):
        with lock:
            checked.append(credentials["username"])
        time.sleep(0.3)
        return real(request, **credentials)

    monkeypatch.setattr(auth, "authenticate", authenticate)
    return checked


@pytest.mark.postgres
def test_a_burst_of_parallel_guesses_gets_five_password_checks(api, fleet, postgres, slow_password_checks):
    from concurrent.futures import ThreadPoolExecutor

    def guess(i):
        return requests.post(api + "login", auth=(ADMIN[0], f"guess-{i}"), timeout=60)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(guess, range(20)))
    assert len(slow_password_checks) == 5
    assert [r.status_code for r in responses] == [401] * 20
    assert {r.json()["errorCode"] for r in responses} == {"ITG-0B002"}
    # fifteen refused unchecked and the fifth failure, which set the lock: all say when to retry
    assert sum("Retry-After" in r.headers for r in responses) == 16
    row = ImiLoginFailure.objects.get()
    assert (row.failures, row.checks_running) == (5, 0) and row.locked_until > clock.now()


@pytest.mark.postgres
def test_parallel_requests_with_the_right_password_all_get_through(
    api, fleet, postgres, slow_password_checks
):
    """Checks beyond the ones allowed at once wait their turn instead of being refused."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(10) as pool:
        responses = list(
            pool.map(lambda _: requests.get(api + "thinclients", auth=ADMIN, timeout=60), range(10))
        )
    assert [r.status_code for r in responses] == [200] * 10
    assert len(slow_password_checks) == 10
    assert not ImiLoginFailure.objects.exists()


def test_login_without_credentials(api):
    error(
        requests.post(api + "login", timeout=10),
        401,
        "ITG-0B001",
        "No authentication header found in request.",
    )
    error(requests.get(api + "login", auth=ADMIN, timeout=10), 400, "ITG-0A011")


def test_logout_without_a_session(api):
    error(requests.post(api + "logout", timeout=10), 401, "ITG-0B003")
    error(requests.post(api + "logout", cookies={"JSESSIONID": "0" * 32}, timeout=10), 401, "ITG-0B004")


def basic(user):
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("count", [10, 60])
def test_list_query_count_does_not_grow_with_devices(client, users, count, django_assert_max_num_queries):
    f.devices(count, directory=f.directory("Pool"))
    # Basic credentials on the request: the user, the device list, and the address's login-check
    # bookkeeping (admitted, then forgotten on success: 4 statements, and 6 savepoint statements
    # that only a test's enclosing transaction makes).
    for facets in ("", "?facets=details", "?facets=online"):
        with django_assert_max_num_queries(12):
            response = client.get(f"/umsapi/v3/thinclients{facets}", HTTP_AUTHORIZATION=basic(ADMIN))
        assert len(response.json()) == count
    with django_assert_max_num_queries(14):
        response = client.get(
            "/umsapi/v3/directories/tcdirectories?facets=children", HTTP_AUTHORIZATION=basic(ADMIN)
        )
    assert len(response.json()[0]["DirectoryChildren"]) == count


def test_delete_with_deletelicenses_frees_the_slot(api, fleet):
    from licensing.models import LicenseSlot, ProductPack

    f.ald_on()
    f.pack("WE-1A2B3", total=5)
    f.register_all()  # the refresh's sweep licenses device a of the fleet
    a = fleet["a"].unit_id
    active = LicenseSlot.objects.filter(released_at__isnull=True).order_by("unit_id")
    assert list(active.values_list("unit_id", flat=True)) == [a]
    session, _ = login(api)
    new_id = session.put(
        api + "thinclients", json={"mac": "00E0C5AABB05", "firmwareID": str(fleet["fw"].pk)}, timeout=30
    ).json()["id"]
    kept = session.put(
        api + "thinclients", json={"mac": "00E0C5AABB06", "firmwareID": str(fleet["fw"].pk)}, timeout=30
    ).json()["id"]
    assert list(active.values_list("unit_id", flat=True)) == [a, "00E0C5AABB05", "00E0C5AABB06"]
    assert ProductPack.objects.get(pack_id="WE-1A2B3").used == 3

    assert session.delete(api + f"thinclients/{new_id}?deletelicenses=true", timeout=10).status_code == 200
    assert session.delete(api + f"thinclients/{kept}", timeout=10).status_code == 200
    # the first device's slot is free again; the second one's stays bound (licenses kept)
    assert list(active.values_list("unit_id", flat=True)) == [a, "00E0C5AABB06"]
    assert ProductPack.objects.get(pack_id="WE-1A2B3").used == 2
    messages = list(
        DeploymentEvent.objects.filter(action="delete_device").order_by("id").values_list("actor", "message")
    )
    assert messages == [
        ("imi-admin", "Device ITC00E0C5AABB05 deleted with its licenses (WE-1A2B3; 1 slot(s) freed)"),
        ("imi-admin", "Device ITC00E0C5AABB06 deleted; its licenses were kept"),
    ]


def test_delete_with_licenses_while_the_licensing_service_is_down(api, fleet, monkeypatch):
    from devices.ils import IlsUnavailable, InProcessLicensingClient

    DeviceLicense.objects.create(
        device=fleet["a"], unit_id=fleet["a"].unit_id, service="WE", pack_id="WE-1A2B3", product_type="WE"
    )

    def down(self, pack_id, unit_id):
        raise IlsUnavailable("connection refused")

    monkeypatch.setattr(InProcessLicensingClient, "release", down)
    session, _ = login(api)
    response = session.delete(api + f"thinclients/{fleet['a'].pk}?deletelicenses=true", timeout=10)
    body = error(response, 500, "ITG-FF004")
    assert "connection refused" in body["message"] and "nothing was removed" in body["message"]
    assert Device.objects.filter(pk=fleet["a"].pk).exists()


@pytest.mark.postgres
def test_two_scripts_creating_the_same_mac_at_once(api, fleet, postgres):
    """Concurrent PUTs of one MAC: exactly one device, the others get ITG-0A008, never a 500."""
    from concurrent.futures import ThreadPoolExecutor

    def create(_):
        return requests.put(
            api + "thinclients",
            json={"mac": "00E0C5AABB07", "firmwareID": str(fleet["fw"].pk)},
            auth=ADMIN,
            timeout=30,
        )

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(create, range(6)))
    codes = sorted(r.json().get("errorCode", "OK") for r in responses)
    assert codes == ["ITG-0A008"] * 5 + ["OK"]
    assert Device.objects.filter(unit_id="00E0C5AABB07").count() == 1
    assert DeploymentEvent.objects.filter(action="device_created").count() == 1


@pytest.mark.postgres
def test_two_opposite_directory_moves_at_once_never_make_a_cycle(api, fleet, postgres, monkeypatch):
    """Moving A into B and B into A at the same moment: one move is done, the other is refused
    (ITG-0A004), and the tree keeps a root. The check is slowed down so both requests are inside it
    together."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from devices.imi import services

    a, b = f.directory("A"), f.directory("B")
    both_checking = threading.Barrier(2, timeout=2)
    real_subtree = services.subtree

    def slow_subtree(*args):
        try:
            both_checking.wait()  # passes only if the two checks can run at the same time
        except threading.BrokenBarrierError:
            pass
        time.sleep(0.2)
        return real_subtree(*args)

    monkeypatch.setattr(services, "subtree", slow_subtree)

    def move(pair):
        moved, into = pair
        return requests.put(
            api + f"directories/tcdirectories/{into.pk}?operation=move",
            json=[{"id": str(moved.pk), "type": "tcdirectory"}],
            auth=ADMIN,
            timeout=30,
        )

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(move, [(a, b), (b, a)]))
    outcomes = sorted(r.status_code for r in responses)
    assert outcomes == [200, 400], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 400)
    assert refused.json()["errorCode"] == "ITG-0A004"
    parents = dict(Directory.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "parent_id"))
    assert None in parents.values()  # one of them is still at the root: no cycle


@pytest.mark.parametrize("credentials", [("imi-ad\x00min", "x"), ("imi-admin", "pw\x00"), ("\x00", "")])
def test_a_nul_in_basic_credentials_is_a_counted_failed_login_not_a_500(api, fleet, credentials):
    """No account has a NUL in its name or password (PostgreSQL could not even look one up)."""
    import base64

    header = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    for path in ("login", "thinclients"):
        method = requests.post if path == "login" else requests.get
        error(method(api + path, headers={"Authorization": header}, timeout=10), 401, "ITG-0B002")
    row = ImiLoginFailure.objects.get()
    assert row.failures == 2
    assert list(row.failures_by_user) == [credentials[0].replace("\x00", "\\x00")]


@pytest.mark.postgres
def test_parallel_updates_of_one_device_keep_every_attribute(api, fleet, postgres, monkeypatch):
    """Each update merges its attributes into what the ones before it wrote: the merge is slowed
    down so that the updates overlap, and none of them is lost."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from devices.imi import services

    real_merge = services._merge_attributes

    def slow_merge(old, new):
        time.sleep(0.1)
        return real_merge(old, new)

    monkeypatch.setattr(services, "_merge_attributes", slow_merge)
    session, _ = login(api)

    def update(i):
        return session.put(
            api + f"thinclients/{fleet['a'].pk}",
            json={"deviceAttributes": [{"identifier": f"attr{i}", "value": str(i)}]},
            timeout=30,
        )

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(update, range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    kept = Device.objects.get(pk=fleet["a"].pk).details["deviceAttributes"]
    assert sorted(a["identifier"] for a in kept) == [f"attr{i}" for i in range(6)]


def _at_once(*calls):
    """Run the calls in parallel threads released together; their responses in order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(len(calls), timeout=10)

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.postgres
def test_deleting_a_directory_while_something_is_moved_into_it(api, fleet, postgres):
    """One of the two wins, the other is told why (gone: ITG-0A002 / not empty: ITG-0A006, both 400);
    never a 500, and nothing points into a directory that is gone. Ten rounds, both kinds of move."""
    for round_ in range(10):
        target = f.directory(f"Target {round_}")
        moved = (
            {"id": str(fleet["a"].pk), "type": "tc"}
            if round_ % 2
            else {"id": str(f.directory(f"Moved {round_}").pk), "type": "tcdirectory"}
        )
        delete, move = _at_once(
            lambda t=target: requests.delete(
                api + f"directories/tcdirectories/{t.pk}", auth=ADMIN, timeout=30
            ),
            lambda t=target, m=moved: requests.put(
                api + f"directories/tcdirectories/{t.pk}?operation=move", json=[m], auth=ADMIN, timeout=30
            ),
        )
        outcome = (delete.status_code, move.status_code)
        assert outcome in {(200, 400), (400, 200)}, (round_, delete.text, move.text)
        if delete.status_code == 200:
            assert move.json()["errorCode"] == "ITG-0A002"
            assert not Directory.objects.filter(pk=target.pk).exists()
        else:
            assert delete.json()["errorCode"] == "ITG-0A006"
            assert move.json() == [{"id": moved["id"], "results": "successful"}]
            # put it back, so that the next round starts from an empty target
            requests.put(
                api + "directories/tcdirectories/-1?operation=move", json=[moved], auth=ADMIN, timeout=30
            )


@pytest.mark.postgres
def test_updating_a_device_while_it_is_deleted(api, fleet, postgres):
    """The update is done before the delete (200, and its executed action stays, without the device)
    or finds the device gone (400 ITG-0A001); never a 500."""
    for round_ in range(10):
        device = f.device(100 + round_, fw=fleet["fw"])
        update, delete = _at_once(
            lambda d=device: requests.put(
                api + f"thinclients/{d.pk}", json={"comment": "x"}, auth=ADMIN, timeout=30
            ),
            lambda d=device: requests.delete(api + f"thinclients/{d.pk}", auth=ADMIN, timeout=30),
        )
        assert delete.status_code == 200, delete.text
        assert update.status_code in (200, 400), update.text
        if update.status_code == 400:
            assert update.json()["errorCode"] == "ITG-0A001"
        assert not Device.objects.filter(pk=device.pk).exists()
