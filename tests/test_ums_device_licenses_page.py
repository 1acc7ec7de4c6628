"""Licenses > Device Licenses (/ums/device-licenses/): one row per license deployed to a device, with
its state on the day shown; filters by unit ID in any common form, service, pack and state; exports
of exactly the filtered rows and a plain unit ID list (docs/DOMAIN.md 5.2)."""

import csv
import io
import json

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from tests import ums_fleet
from tests.test_exports import shown

pytestmark = pytest.mark.django_db
URL = reverse("devices:device_licenses")


@pytest.fixture
def fleet(db):
    return ums_fleet.build()


def records(response):
    assert response.status_code == 200
    return [
        (r.unit_id, r.device.name, r.service, r.pack_id, str(r.expires_at), r.expiry_state)
        for r in (row.record for row in response.context["table"].page.object_list)
    ]


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_every_license_is_listed_with_its_state_on_the_day(helpdesk_client, fleet):
    assert records(helpdesk_client.get(URL)) == [
        ("00E0C5000001", "ITC-BER-OLD", "WE", "WE-SOONA", "2026-12-06", "expired"),
        ("00E0C5000002", "ITC-BER-SALES", "WE", "WE-SOONA", "2026-12-06", "grace"),
        ("00E0C5000003", "ITC-HAM", "EMP", "EMP-HAMBA", "2027-12-03", "licensed"),
        ("00E0C5000003", "ITC-HAM", "WE", "WE-LONGA", "2027-12-01", "licensed"),
        ("00E0C5000004", ums_fleet.FORMULA_NAME, "WE", "WE-MIDDA", "2026-12-25", "expiring"),
    ]


def test_expired_and_grace_expiry_dates_are_marked_red(helpdesk_client, fleet):
    html = helpdesk_client.get(URL).content.decode()
    assert html.count('<span class="expired">') == 2
    assert '<span class="badge badge-state-grace">Grace</span>' in html


@pytest.mark.parametrize(
    "form",
    [
        "00E0C5000002",
        "00:e0:c5:00:00:02",
        "00-E0-C5-00-00-02",
        "00e0.c500.0002",
        "00 E0 C5 00 00 02",  # as a person types it, in pairs with spaces
        " 00e0 c500 0002 ",  # in fours with spaces
    ],
)
def test_unit_id_filter_takes_any_common_form(helpdesk_client, fleet, form):
    assert [r[0] for r in records(helpdesk_client.get(URL, {"unit_id": form}))] == ["00E0C5000002"]


def test_unit_id_filter_takes_part_of_an_id(helpdesk_client, fleet):
    assert [r[0] for r in records(helpdesk_client.get(URL, {"unit_id": "00:03"}))] == [
        "00E0C5000003",
        "00E0C5000003",
    ]


def test_malformed_unit_id_is_an_error_naming_the_field_and_value(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"unit_id": "zz:12"})
    assert response.status_code == 200
    assert records(response) == []
    assert "Unit ID &#x27;zz:12&#x27; is not hexadecimal digits" in response.content.decode()


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"expiry_state": "grace"}, [("00E0C5000002", "WE-SOONA")]),
        ({"expiry_state": "expired"}, [("00E0C5000001", "WE-SOONA")]),
        ({"expiry_state": "expiring"}, [("00E0C5000004", "WE-MIDDA")]),
        ({"expiry_state": "licensed"}, [("00E0C5000003", "EMP-HAMBA"), ("00E0C5000003", "WE-LONGA")]),
        ({"service": "EMP"}, [("00E0C5000003", "EMP-HAMBA")]),
        ({"pack_id": "WE-SOONA"}, [("00E0C5000001", "WE-SOONA"), ("00E0C5000002", "WE-SOONA")]),
        ({"pack_id": "WE-SOONA", "expiry_state": "grace"}, [("00E0C5000002", "WE-SOONA")]),
    ],
)
def test_filters_show_exactly_the_matching_licenses(helpdesk_client, fleet, params, expected):
    assert [(r[0], r[3]) for r in records(helpdesk_client.get(URL, params))] == expected


def test_sort_by_expiry_descending_with_perpetual_and_ties_stable(helpdesk_client, fleet):
    rows = records(helpdesk_client.get(URL, {"sort": "-expires_at"}))
    assert [r[3] for r in rows] == ["EMP-HAMBA", "WE-LONGA", "WE-MIDDA", "WE-SOONA", "WE-SOONA"]
    assert [r[0] for r in rows[3:]] == ["00E0C5000002", "00E0C5000001"]  # same day: by pk, reversed


def read_export(response, fmt):
    data = body(response)
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    elif fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
        lines = [[shown(cell) for cell in row] for row in sheet.iter_rows()]  # as the spreadsheet shows it
    else:
        objs = json.loads(data)
        lines = [list(objs[0])] + [[str(v) for v in o.values()] for o in objs]
    return lines[0], lines[1:]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_holds_exactly_the_filtered_rows(helpdesk_client, fleet, fmt):
    response = helpdesk_client.get(URL, {"pack_id": "WE-MIDDA", "export": fmt})
    assert response.status_code == 200
    assert response.streaming == (fmt == "csv")
    header, rows = read_export(response, fmt)
    assert header == [
        "Unit ID",
        "Device",
        "Service",
        "Pack ID",
        "Expiry",
        "State",
        "Demo",
        "Source",
        "Status",
        "Registered on",
    ]
    assert len(rows) == 1
    # the device's name starts a formula: CSV writes it after a ', XLSX as a string cell, JSON as it is
    name = "'" + ums_fleet.FORMULA_NAME if fmt == "csv" else ums_fleet.FORMULA_NAME
    assert rows[0][:9] == [
        "00E0C5000004",
        name,
        "WE",
        "WE-MIDDA",
        "2026-12-25",
        "expiring",
        "no",
        "Automatic deployment",
        "Current",
    ]


def test_unit_id_list_is_streamed_text_of_the_filtered_unit_ids_each_once(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"expiry_state": "licensed", "export": "unit_ids"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="device-licenses-unit-ids-2026-12-20.txt"'
    assert body(response).decode() == "00E0C5000003\n"
    everything = body(helpdesk_client.get(URL, {"export": "unit_ids"})).decode()
    assert everything == "00E0C5000001\n00E0C5000002\n00E0C5000003\n00E0C5000004\n"


def test_unit_id_list_of_a_malformed_filter_is_refused_naming_it(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"unit_id": "nothex", "export": "unit_ids"})
    assert response.status_code == 400
    assert response.content.decode().startswith("No export: a filter is not valid.\nUnit ID")
    assert "nothex" in response.content.decode()


def test_the_database_state_agrees_with_the_device_page_for_every_day_around_expiry(db):
    """licenses_with_state (the list, its filter and sort) and DeviceLicense.expiry_state (the device
    page) give the same state for expiries from 40 days ago to 10 days ahead, on IGEL OS 11 and 12."""
    import datetime

    from ald_portal import clock
    from devices.models import DeviceLicense
    from devices.queries import licenses_with_state
    from tests import factories as f

    today = clock.today()
    fws = {11: f.firmware("11.08.440.01"), 12: f.firmware("12.5.2", product="IGEL OS 12", fw_type="OS12")}
    made = []
    for i, (major, offset) in enumerate((m, o) for m in (11, 12) for o in [None, *range(-40, 11)]):
        dev = f.device(n=9000 + i, fw=fws[major])
        expires = None if offset is None else today + datetime.timedelta(days=offset)
        made.append(
            DeviceLicense.objects.create(
                device=dev, unit_id=dev.unit_id, service="WE", pack_id="WE-XXXXX", expires_at=expires
            )
        )
    from_db = dict(licenses_with_state(today, 7).values_list("pk", "expiry_state"))
    expected = {lic.pk: lic.expiry_state(today, lic.device.firmware.os_major, 7) for lic in made}
    assert from_db == expected
    assert sorted(set(expected.values())) == ["expired", "expiring", "grace", "licensed"]
