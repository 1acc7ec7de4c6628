"""The licensing service's HTTP API under hostile input: it signs only what a pack grants, a unit ID
with a trailing newline is not a unit ID, and odd bodies are 400s naming the problem, never 500s."""

import json

import pytest

from licensing.contract import LicenseErrorCode
from licensing.models import LicenseSlot, ProductPack
from licensing.services import remove_hardware
from tests import factories as f
from tests.test_ils_http import UNITS, signed

pytestmark = pytest.mark.django_db(transaction=True)
FILES = "/ils/v1/license-files"
REQUEST = "/ils/v1/licenses/request"


def post(live_server, path, data):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return signed(live_server, "POST", path, body)


@pytest.fixture
def bound(db):
    """WE-AAAAA (expires 2027-12-03) with a slot bound to UNITS[0]."""
    f.pack("WE-AAAAA", total=5)
    f.ums()
    from devices.services import ums_identity
    from licensing.services import request_licenses

    request_licenses("WE-AAAAA", UNITS[:1], ums_identity().ums_id_fingerprint)


def file_request(**changes):
    return {
        "pack_id": "WE-AAAAA",
        "unit_id": UNITS[0],
        "service": "WE",
        "expires": "2027-12-03",
        "issued_at": "2026-12-03T12:00:00+01:00",
        **changes,
    }


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"expires": "2099-12-31"},
            "expires 2099-12-31 is later than the expiry of pack WE-AAAAA (2027-12-03)",
        ),
        ({"expires": None}, "expires never is later than the expiry of pack WE-AAAAA (2027-12-03)"),
        (
            {"issued_at": "2026-01-01T00:00:00"},
            "issued_at '2026-01-01T00:00:00' must be a time with its time zone",
        ),
        ({"issued_at": "2030-01-01T00:00:00+00:00"}, "not in the future"),
        # year 1 east of UTC is before the first representable time: refused by name, not a 500
        ({"issued_at": "0001-01-01T00:00:00+05:00"}, "issued_at '0001-01-01T00:00:00+05:00' a date and time"),
        ({"issued_at": "0001-01-01T00:00:00+23:59"}, "issued_at '0001-01-01T00:00:00+23:59' a date and time"),
        (
            {"issued_at": "0001-01-01T00:00:00-05:00", "expires": "0001-01-01"},
            "issued_at '0001-01-01T00:00:00-05:00' is before the license of 00E0C5000001 in pack WE-AAAAA "
            "was bound (2026-12-03T11:00:00+00:00)",
        ),
    ],
)
def test_a_license_file_is_signed_only_for_what_the_pack_grants(live_server, bound, changes, message):
    response = post(live_server, FILES, file_request(**changes))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == LicenseErrorCode.BAD_REQUEST
    assert message in response.json()["error"]["message"]


def test_the_pack_expiry_signs_and_removed_hardware_gets_no_file(live_server, bound):
    assert post(live_server, FILES, file_request()).status_code == 200
    remove_hardware("WE-AAAAA", UNITS[:1], actor="ilp-admin", accept_terms=True)
    response = post(live_server, FILES, file_request())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == LicenseErrorCode.UNKNOWN_UNIT_ID


def test_a_unit_id_with_a_trailing_newline_gets_no_second_slot(live_server, bound):
    response = post(live_server, REQUEST, {"pack_id": "WE-AAAAA", "unit_ids": [UNITS[0] + "\n"]})
    assert response.json()["error"]["code"] == LicenseErrorCode.UNKNOWN_UNIT_ID
    assert list(LicenseSlot.objects.values_list("unit_id", flat=True)) == [UNITS[0]]
    response = post(live_server, REQUEST, {"pack_id": "WE-AAAAA\n", "unit_ids": [UNITS[1]]})
    assert response.status_code == 400
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


@pytest.mark.parametrize(
    "body, code",
    [
        ({"pack_id": "WE-AAAAA", "unit_ids": [{"a": 1}]}, LicenseErrorCode.UNKNOWN_UNIT_ID),
        ({"pack_id": "WE-AAAAA", "unit_ids": [["x"]]}, LicenseErrorCode.UNKNOWN_UNIT_ID),
        (b"[" * 100000, LicenseErrorCode.BAD_REQUEST),
        (b'{"pack_id": "WE-AAAAA", "unit_ids": ["00E0C5AABB01"], "n": NaN}', LicenseErrorCode.BAD_REQUEST),
        (b'{"pack_id": "WE-AAAAA", "unit_ids": ["00E0C5AABB01"], "n": 1e999}', LicenseErrorCode.BAD_REQUEST),
        (
            b'{"pack_id": "WE-AAAAA", "unit_ids": ["00E0C5AABB01"], "n": "\\u0000"}',
            LicenseErrorCode.BAD_REQUEST,
        ),
    ],
)
def test_odd_request_bodies_are_refused_by_name_and_change_nothing(live_server, bound, body, code):
    response = post(live_server, REQUEST, body)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] == code
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1
