"""Search hardware: a unit ID or MAC in any common form finds the licenses bound to it now and
removed earlier, with pack, product type, expiry and UMS ID; a device whose MAC differs from its unit
ID is found by its MAC too; bad input is a form error naming the field and the value."""

import json

import pytest
from django.urls import reverse

from licensing.services import release_license, remove_hardware, request_licenses
from tests import factories as f
from tests.test_pack_page import rows

SEARCH = reverse("licensing:search_hardware")
UNIT = "00E0C5123456"
POCKET = "85641000F615234423"  # a UD Pocket: its unit ID is not its MAC
POCKET_MAC = "00E0C5ABCDEF"


def bind(pack_id, units):
    assert len(request_licenses(pack_id, units, ums_fingerprint=f.ums().fingerprint).granted) == len(units)


@pytest.fixture
def slots(db):
    """UNIT holds WE-AAAAA now, held EMP-BBBBB until alice removed it; the UD Pocket holds WE-AAAAA;
    another unit holds UDP-CCCCC."""
    f.pack("WE-AAAAA", total=10)
    f.pack("EMP-BBBBB", product_type="EMP", total=5, expiry=None)
    f.pack("UDP-CCCCC", product_type="UDP", total=5)
    bind("WE-AAAAA", [UNIT, POCKET])
    bind("EMP-BBBBB", [UNIT])
    bind("UDP-CCCCC", ["00E0C5000777"])
    remove_hardware("EMP-BBBBB", [UNIT], actor="alice", accept_terms=True)
    f.device(900, unit_id=POCKET, mac=POCKET_MAC, name="POCKET-1")


def found(client, value, **extra):
    response = client.get(SEARCH, {"hardware": value, **extra})
    assert response.status_code == 200
    return response, rows(response, "Unit ID")


@pytest.mark.parametrize(
    "value",
    [
        "00E0C5123456",
        "00e0c5123456",
        "00:E0:C5:12:34:56",
        "00-e0-c5-12-34-56",
        "00e0.c512.3456",
        "00 E0 C5 12 34 56",
        "  00:e0:c5:12:34:56  ",
        "00E0 C512 3456",
    ],
)
def test_any_common_form_of_a_unit_id_finds_its_licenses(helpdesk_client, slots, value):
    _, hits = found(helpdesk_client, value, sort="pack")
    assert [
        (
            h["Unit ID"],
            h["Pack ID"],
            h["Product type"],
            h["License"],
            h["Removed by"],
            h["License expiry"],
            h["UMS ID"],
        )
        for h in hits
    ] == [
        (UNIT, "EMP-BBBBB", "EMP", "Removed", "alice", "perpetual", "ALD Portal UMS"),
        (UNIT, "WE-AAAAA", "WE", "Bound", "—", "2027-12-03", "ALD Portal UMS"),
    ]
    assert hits[0]["_links"]["Pack ID"] == reverse("licensing:pack_detail", args=["EMP-BBBBB"])
    assert hits[1]["_links"]["Unit ID"] == reverse("devices:device_list") + f"?q={UNIT}"


def test_state_filter_keeps_bound_or_removed_licenses(helpdesk_client, slots):
    _, hits = found(helpdesk_client, UNIT, state="active")
    assert [h["Pack ID"] for h in hits] == ["WE-AAAAA"]
    _, hits = found(helpdesk_client, UNIT, state="released")
    assert [h["Pack ID"] for h in hits] == ["EMP-BBBBB"]


def test_a_device_is_found_by_its_mac_when_that_differs_from_its_unit_id(helpdesk_client, slots):
    for value in ("00:e0:c5:ab:cd:ef", POCKET, POCKET.lower()):
        _, hits = found(helpdesk_client, value)
        assert [(h["Unit ID"], h["MAC"], h["Pack ID"]) for h in hits] == [(POCKET, POCKET_MAC, "WE-AAAAA")]


def test_a_unit_with_no_license_ever_says_so(helpdesk_client, slots):
    response, hits = found(helpdesk_client, "00:00:00:00:00:01")
    assert hits == []
    assert "No license is or was bound to this unit ID or MAC." in response.content.decode()


def test_the_bare_page_asks_for_a_unit_id_and_lists_nothing(helpdesk_client, slots):
    response = helpdesk_client.get(SEARCH)
    assert response.status_code == 200
    assert rows(response, "Unit ID") == []
    assert '<label for="id_hardware">Unit ID or MAC:</label>' in response.content.decode()
    # nothing searched yet: it asks, it does not report a search that found nothing
    assert "Give a unit ID or MAC to see the licenses bound to it." in response.content.decode()
    assert "No license is or was bound" not in response.content.decode()
    # nor is there an (empty) file to export
    assert "Export this list" not in response.content.decode()
    searched = helpdesk_client.get(SEARCH, {"hardware": "00:00:00:00:00:01"})
    assert "Export this list" in searched.content.decode()
    export = helpdesk_client.get(SEARCH, {"export": "csv"})
    assert export.status_code == 400
    assert (
        export.content.decode()
        == "No export: give a unit ID or MAC (hardware) to export the licenses bound to it.\n"
    )


@pytest.mark.parametrize(
    "value",
    [
        "zz",
        "00E0C51234",
        "00:E0:C5:12:34",
        "00E0C5-12-3456",
        "00:e0-c5:12:34:56",
        "ﬀ0000000000",
        "00E0C51234567",
    ],
)
def test_bad_input_is_a_form_error_naming_field_and_value(helpdesk_client, slots, value):
    response = helpdesk_client.get(SEARCH, {"hardware": value})
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        f'data-field="hardware">Unit ID or MAC {value!r} is not a unit ID or MAC: give 12 or 18 hexadecimal'.replace(
            "'", "&#x27;"
        )
        in html
    )
    assert rows(response, "Unit ID") == []


def test_nul_byte_is_a_form_error_not_a_500(helpdesk_client, slots):
    response = helpdesk_client.get(SEARCH, {"hardware": "00E0C5\x00123456"})
    assert response.status_code == 200
    assert 'data-field="hardware"' in response.content.decode()


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_holds_exactly_the_found_licenses(helpdesk_client, slots, fmt):
    from tests.test_exports import column, read

    export = read(
        helpdesk_client.get(SEARCH, {"hardware": "00-e0-c5-12-34-56", "sort": "pack", "export": fmt}), fmt
    )
    assert column(export, fmt, "Pack ID") == ["EMP-BBBBB", "WE-AAAAA"]
    assert column(export, fmt, "License") == ["Removed", "Bound"]


def test_released_by_the_ums_is_found_too(helpdesk_client, slots):
    assert release_license("WE-AAAAA", POCKET)
    _, hits = found(helpdesk_client, POCKET)
    assert [(h["License"], h["Removed by"]) for h in hits] == [("Removed", "UMS")]
    export = json.loads(helpdesk_client.get(SEARCH, {"hardware": POCKET, "export": "json"}).content)
    assert export[0]["Removed at"] == "2026-12-03T12:00:00+01:00"
