"""Exports of the device list (/ums/devices/) and the Product Packs list (/ilp/packs/), and the typed
cells of every export (Device Licenses, Activity).

Each export holds exactly the rows the list shows under its filters and sort (checked against the
database), a header row, plain text cells; a cell that would start a spreadsheet formula is exported
as text (CSV: a leading '; XLSX: a string cell, never a formula); dates, times and numbers keep their
type (XLSX: date cells with a date format, number cells; JSON: ISO 8601 in local time with its offset);
CSV is streamed; the number of queries does not grow with the rows."""

import csv
import datetime
import io
import json
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from devices.models import Device, DeviceLicense
from licensing.models import ProductPack
from licensing.services import request_licenses, set_pack_comment
from tests import factories

DEVICES = reverse("devices:device_list")
PACKS = reverse("licensing:pack_list")
FORMATS = ["csv", "xlsx", "json"]
FORMULA = "=HYPERLINK(1)"
DEVICE_LICENSES = reverse("devices:device_licenses")
ACTIVITY = reverse("licensing:activity")


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="s3cret-enough"))
    return client


def content(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def shown(cell):
    """A spreadsheet cell as the spreadsheet shows it: a date (time) in its number format, a share as
    a percentage, anything else as its text."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M" if "h" in cell.number_format else "%Y-%m-%d")
    if isinstance(value, int | float) and cell.number_format == "0%":
        return f"{round(100 * value)}%"
    return str(value)


def read(response, fmt):
    """The export as its header and rows of text (XLSX: as the spreadsheet shows them; JSON: the list
    of objects as is)."""
    assert response.status_code == 200
    data = content(response)
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        return lines[0], lines[1:]
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
        lines = [[shown(cell) for cell in row] for row in sheet.iter_rows()]
        return lines[0], lines[1:]
    return json.loads(data)


def sheet_of(response):
    """The XLSX export's sheet, cells and styles loaded (not read-only), and its header."""
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(content(response))).worksheets[0]
    return sheet, [c.value for c in sheet[1]]


def cell_of(sheet, header, key_header, key, name):
    """The cell in column ``name`` of the row whose ``key_header`` column holds ``key``."""
    (row,) = [r for r in sheet.iter_rows(min_row=2) if r[header.index(key_header)].value == key]
    return row[header.index(name)]


def sheet_xml(response):
    with zipfile.ZipFile(io.BytesIO(content(response))) as xlsx:
        return xlsx.read("xl/worksheets/sheet1.xml").decode()


def column(export, fmt, header):
    if fmt == "json":
        return [row[header] for row in export]
    head, lines = export
    return [line[head.index(header)] for line in lines]


# --- the device list ------------------------------------------------------------------------------
@pytest.fixture
def devices(db):
    """Five devices on one firmware (one named like a formula), three on another."""
    fw_a = factories.firmware("11.08.440.01")
    fw_b = factories.firmware("12.01.100.01", product="IGEL OS 12")
    factories.devices(4, start=100, fw=fw_a)
    factories.device(n=500, fw=fw_a, name=FORMULA)
    factories.devices(3, start=200, fw=fw_b)
    return fw_a


DEVICE_HEADER = [
    "Name",
    "Unit ID",
    "MAC",
    "Directory",
    "Firmware",
    "Last IP",
    "Site",
    "License state",
    "Licenses",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_device_export_has_exactly_the_filtered_rows_in_the_sort_order(reader_client, devices, fmt):
    response = reader_client.get(DEVICES, {"firmware": devices.pk, "sort": "-name", "export": fmt})
    export = read(response, fmt)
    expected = list(
        Device.objects.filter(firmware=devices).order_by("-name", "-pk").values_list("name", flat=True)
    )
    names = column(export, fmt, "Name")
    if fmt == "csv":
        assert export[0] == DEVICE_HEADER
        assert names == [f"'{n}" if n == FORMULA else n for n in expected]
    else:  # XLSX: a string cell shows the text as it is; JSON: the value as it is
        assert (list(export[0]) if fmt == "json" else export[0]) == DEVICE_HEADER
        assert names == expected
    assert len(names) == 5
    assert response["Content-Disposition"] == f'attachment; filename="devices-2026-12-03.{fmt}"'


def test_device_named_like_a_formula_is_exported_as_text_in_csv(reader_client, devices):
    names = column(read(reader_client.get(DEVICES, {"export": "csv"}), "csv"), "csv", "Name")
    assert "'=HYPERLINK(1)" in names
    assert FORMULA not in names


def test_device_named_like_a_formula_is_a_string_cell_in_xlsx(reader_client, devices):
    """No formula, no apostrophe: a string cell holding the name, shown as text, never evaluated."""
    response = reader_client.get(DEVICES, {"export": "xlsx"})
    sheet, header = sheet_of(response)
    cell = cell_of(sheet, header, "Name", FORMULA, "Name")
    assert (cell.value, cell.data_type) == (FORMULA, "s")
    assert cell.quotePrefix is True  # as Excel marks a typed '=…: stays text when edited
    xml = sheet_xml(response)
    assert "<f>" not in xml and "<f " not in xml
    assert "<is><t>=HYPERLINK(1)</t></is>" in xml
    assert "'=HYPERLINK" not in xml


def test_device_export_cells_are_plain_text(reader_client, devices):
    export = read(reader_client.get(DEVICES, {"export": "json"}), "json")
    (row,) = [row for row in export if row["Name"] == FORMULA]
    assert row["Name"] == FORMULA  # JSON is no spreadsheet: the value as it is
    assert row["License state"] == "Unlicensed"
    assert row["Licenses"] == "—"
    assert not any("<" in str(v) for row in export for v in row.values())


def test_device_csv_export_is_streamed(reader_client, devices):
    response = reader_client.get(DEVICES, {"export": "csv"})
    assert response.streaming is True
    assert response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_device_export_query_count_does_not_grow_with_rows(reader_client, db, fmt):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = reader_client.get(DEVICES, {"export": fmt})
            data = read(response, fmt)
        return len(ctx.captured_queries), data

    factories.devices(10, start=1000)
    few, data = queries()
    assert len(data if fmt == "json" else data[1]) == 10
    factories.devices(290, start=5000)
    many, data = queries()
    assert len(data if fmt == "json" else data[1]) == 300
    assert few == many


# --- the Product Packs list -----------------------------------------------------------------------
@pytest.fixture
def packs(db):
    factories.pack("WE-AAAAA", comment=FORMULA)
    factories.pack("WE-BBBBB", comment="+49 30 123")
    factories.pack("WE-CCCCC", expiry=None)
    factories.pack("EMP-DDDDD", product_type="EMP")
    factories.pack("WE-ARCHV", status="ARCHIVED")  # not in use: not listed by default


PACK_HEADER = [
    "Pack ID",
    "Product",
    "Product type",
    "Status",
    "Total",
    "Used",
    "Free",
    "Consumption",
    "Expiry",
    "Subscription key",
    "UMS ID",
    "Comment",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_export_has_exactly_the_filtered_rows_in_the_sort_order(reader_client, packs, fmt):
    response = reader_client.get(PACKS, {"product_type": "WE", "sort": "-pack_id", "export": fmt})
    export = read(response, fmt)
    expected = list(
        ProductPack.objects.filter(product_type="WE")
        .exclude(status__in=["ARCHIVED", "MERGED"])
        .order_by("-pack_id")
        .values_list("pack_id", flat=True)
    )
    assert expected == ["WE-CCCCC", "WE-BBBBB", "WE-AAAAA"]
    assert column(export, fmt, "Pack ID") == expected
    assert (list(export[0]) if fmt == "json" else export[0]) == PACK_HEADER
    comments = column(export, fmt, "Comment")
    if fmt == "csv":
        assert comments == ["", "'+49 30 123", "'=HYPERLINK(1)"]
    else:  # XLSX: string cells, shown as they are
        assert comments == ["", "+49 30 123", FORMULA]
    assert column(export, fmt, "Consumption") == ["0%"] * 3
    assert column(export, fmt, "Expiry") == ["perpetual", "2027-12-03", "2027-12-03"]
    assert [str(n) for n in column(export, fmt, "Total")] == ["10"] * 3
    assert response["Content-Disposition"] == f'attachment; filename="packs-2026-12-03.{fmt}"'


def test_pack_export_of_archived_packs_when_asked_for(reader_client, packs):
    export = read(reader_client.get(PACKS, {"status": "ARCHIVED", "export": "json"}), "json")
    assert [row["Pack ID"] for row in export] == ["WE-ARCHV"]
    assert export[0]["Total"] == 10  # numbers stay numbers in JSON


def test_pack_csv_export_is_streamed(reader_client, packs):
    assert reader_client.get(PACKS, {"export": "csv"}).streaming is True


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_export_query_count_does_not_grow_with_rows(reader_client, db, fmt):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            data = read(reader_client.get(PACKS, {"export": fmt}), fmt)
        return len(ctx.captured_queries), len(data if fmt == "json" else data[1])

    for i in range(10):
        factories.pack(f"WE-A{i:04d}")
    few, rows = queries()
    assert rows == 10
    for i in range(290):
        factories.pack(f"WE-B{i:04d}")
    many, rows = queries()
    assert rows == 300
    assert few == many


# --- typed cells: numbers, shares, dates and times ---------------------------------------------------
@pytest.fixture
def used_pack(db):
    """A pack of 10 with 4 licenses bound (40% consumed) expiring 2027-12-03, and a perpetual one."""
    factories.pack("WE-USEDA", total=10)
    request_licenses("WE-USEDA", [factories.mac_for(n) for n in range(1, 5)], factories.ums().fingerprint)
    factories.pack("WE-PERPA", expiry=None, comment="40%")


def test_pack_xlsx_cells_are_numbers_shares_and_real_dates(reader_client, used_pack):
    sheet, header = sheet_of(reader_client.get(PACKS, {"export": "xlsx"}))

    def cell(pack_id, name):
        return cell_of(sheet, header, "Pack ID", pack_id, name)

    total, used, free = (cell("WE-USEDA", name) for name in ("Total", "Used", "Free"))
    assert [(c.value, c.data_type) for c in (total, used, free)] == [(10, "n"), (4, "n"), (6, "n")]
    share = cell("WE-USEDA", "Consumption")  # 40% on the page: the number 0.4 shown as a percentage
    assert (share.value, share.data_type, share.number_format) == (0.4, "n", "0%")
    expiry = cell("WE-USEDA", "Expiry")
    assert expiry.is_date and expiry.data_type == "d"
    assert expiry.value == datetime.datetime(2027, 12, 3)  # openpyxl reads any date cell as a datetime
    assert expiry.number_format == "yyyy-mm-dd"
    perpetual = cell("WE-PERPA", "Expiry")  # the column's own default: text
    assert (perpetual.value, perpetual.data_type) == ("perpetual", "s")
    comment = cell("WE-PERPA", "Comment")  # text a user typed stays text, even when it reads "40%"
    assert (comment.value, comment.data_type) == ("40%", "s")
    assert cell("WE-PERPA", "Pack ID").data_type == "s"


def test_pack_json_and_csv_keep_numbers_and_the_share_as_shown(reader_client, used_pack):
    (row,) = [
        r for r in read(reader_client.get(PACKS, {"export": "json"}), "json") if r["Pack ID"] == "WE-USEDA"
    ]
    assert (row["Total"], row["Used"], row["Free"]) == (10, 4, 6)
    assert row["Consumption"] == "40%"
    assert row["Expiry"] == "2027-12-03"
    head, lines = read(reader_client.get(PACKS, {"export": "csv"}), "csv")
    (line,) = [line for line in lines if line[0] == "WE-USEDA"]
    assert [line[head.index(h)] for h in ("Total", "Consumption", "Expiry")] == ["10", "40%", "2027-12-03"]


BERLIN_WINTER = timezone.make_aware(datetime.datetime(2026, 12, 3, 12, 0, 0, 123456))  # UTC 11:00
BERLIN_SUMMER = timezone.make_aware(datetime.datetime(2026, 7, 1, 14, 30, 15))  # UTC 12:30:15


@pytest.fixture
def licenses(db):
    """Two device licenses: issued in winter (+01:00) with microseconds, and in summer (+02:00)."""
    for n, (issued, expires) in enumerate(
        [(BERLIN_WINTER, datetime.date(2026, 12, 25)), (BERLIN_SUMMER, None)], start=1
    ):
        device = factories.device(n=n)
        DeviceLicense.objects.create(
            device=device,
            unit_id=device.unit_id,
            service="WE",
            pack_id="WE-MIDDA",
            product_type="WE",
            issued_at=issued,
            expires_at=expires,
        )
    return [factories.mac_for(1), factories.mac_for(2)]


def test_json_dates_are_iso_and_times_local_with_their_offset(reader_client, licenses):
    export = read(reader_client.get(DEVICE_LICENSES, {"export": "json", "sort": "unit_id"}), "json")
    assert [row["Unit ID"] for row in export] == licenses
    assert [row["Registered on"] for row in export] == [
        "2026-12-03T12:00:00+01:00",  # stored 11:00:00.123456 UTC
        "2026-07-01T14:30:15+02:00",
    ]
    assert [row["Expiry"] for row in export] == ["2026-12-25", "perpetual"]


def test_csv_times_are_local_as_the_page_shows_them(reader_client, licenses):
    export = read(reader_client.get(DEVICE_LICENSES, {"export": "csv", "sort": "unit_id"}), "csv")
    assert column(export, "csv", "Registered on") == ["2026-12-03 12:00", "2026-07-01 14:30"]
    assert column(export, "csv", "Expiry") == ["2026-12-25", "perpetual"]
    page = reader_client.get(DEVICE_LICENSES, {"sort": "unit_id"}).content.decode()
    assert "2026-12-03 12:00" in page and "2026-07-01 14:30" in page


def test_xlsx_times_are_local_naive_date_cells(reader_client, licenses):
    sheet, header = sheet_of(reader_client.get(DEVICE_LICENSES, {"export": "xlsx"}))
    winter, summer = (cell_of(sheet, header, "Unit ID", unit_id, "Registered on") for unit_id in licenses)
    assert winter.value == datetime.datetime(2026, 12, 3, 12, 0)  # Excel has no zones: local, naive
    assert summer.value == datetime.datetime(2026, 7, 1, 14, 30, 15)
    for cell in (winter, summer):
        assert cell.is_date and cell.data_type == "d"
        assert cell.number_format == "yyyy-mm-dd hh:mm"
    expiry = cell_of(sheet, header, "Unit ID", licenses[0], "Expiry")
    assert expiry.value == datetime.datetime(2026, 12, 25) and expiry.number_format == "yyyy-mm-dd"


@pytest.mark.parametrize(
    ("fmt", "when"),
    [("csv", "2026-12-03 12:00"), ("json", "2026-12-03T12:00:00+01:00"), ("xlsx", "2026-12-03 12:00")],
)
def test_a_time_the_table_words_for_export_is_still_a_time(helpdesk_client, db, fmt, when):
    """The Activity table gives "When" as local text; the column is a date-time one, so the export
    has the time itself (typed in XLSX and JSON)."""
    factories.pack("WE-AAAAA")
    set_pack_comment("WE-AAAAA", "=cmd", actor="bob")
    response = helpdesk_client.get(ACTIVITY, {"export": fmt})
    assert column(read(response, fmt), fmt, "When") == [when]
    if fmt == "xlsx":
        sheet, header = sheet_of(helpdesk_client.get(ACTIVITY, {"export": fmt}))
        cell = sheet.cell(row=2, column=header.index("When") + 1)
        assert cell.value == datetime.datetime(2026, 12, 3, 12, 0) and cell.is_date


# --- who may export, and the links ----------------------------------------------------------------
@pytest.mark.parametrize("url", [DEVICES, PACKS])
@pytest.mark.parametrize("fmt", FORMATS)
def test_anonymous_export_is_sent_to_login(client, db, url, fmt):
    response = client.get(url, {"export": fmt})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "url, formats",
    [
        (DEVICES, "csv, xlsx, json"),
        (PACKS, "csv, xlsx, json"),
        (reverse("devices:device_licenses"), "csv, xlsx, json, unit_ids"),
    ],
)
def test_an_unknown_export_format_is_refused_naming_it(reader_client, devices, url, formats):
    response = reader_client.get(url, {"export": "pdf"})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"No export: export 'pdf' is not one of {formats}.\n"
    assert reader_client.get(url, {"export": ""}).status_code == 200  # an empty one: the page


@pytest.mark.parametrize("url", [DEVICES, PACKS])
def test_list_links_to_its_exports_keeping_filters_and_sort(reader_client, devices, url):
    html = reader_client.get(url, {"q": "ITC", "sort": "-name", "page": "2"}).content.decode()
    for fmt in FORMATS:
        assert f'href="?q=ITC&amp;sort=-name&amp;export={fmt}"' in html


def test_the_unit_id_list_under_a_filter_that_is_not_valid_says_why(reader_client, devices):
    response = reader_client.get(reverse("devices:device_licenses"), {"status": "LOST", "export": "unit_ids"})
    assert response.status_code == 400
    body = response.content.decode()
    assert body.startswith("No export: a filter is not valid.\nStatus (status): ")
    assert "LOST" in body
