"""Exports of the device list (/ums/devices/) and the Product Packs list (/ilp/packs/).

Each export holds exactly the rows the list shows under its filters and sort (checked against the
database), a header row, plain text cells; a cell that would start a spreadsheet formula is exported
as text; CSV is streamed; the number of queries does not grow with the rows."""

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from devices.models import Device
from licensing.models import ProductPack
from tests import factories

DEVICES = reverse("devices:device_list")
PACKS = reverse("licensing:pack_list")
FORMATS = ["csv", "xlsx", "json"]
FORMULA = "=HYPERLINK(1)"


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="s3cret-enough"))
    return client


def content(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def read(response, fmt):
    """The export as its header and rows of text (JSON: the list of objects as is)."""
    assert response.status_code == 200
    data = content(response)
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        return lines[0], lines[1:]
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
        lines = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        return lines[0], lines[1:]
    return json.loads(data)


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
    if fmt == "json":
        assert list(export[0]) == DEVICE_HEADER
        assert names == expected
    else:
        assert export[0] == DEVICE_HEADER
        assert names == [f"'{n}" if n == FORMULA else n for n in expected]
    assert len(names) == 5
    assert response["Content-Disposition"] == f'attachment; filename="devices-2026-12-03.{fmt}"'


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_device_named_like_a_formula_is_exported_as_text(reader_client, devices, fmt):
    names = column(read(reader_client.get(DEVICES, {"export": fmt}), fmt), fmt, "Name")
    assert "'=HYPERLINK(1)" in names
    assert FORMULA not in names


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
    if fmt == "json":
        assert comments == ["", "+49 30 123", FORMULA]
        assert [row["Consumption"] for row in export] == ["0%"] * 3
        assert export[0]["Expiry"] == "perpetual"  # the column's own default, as on the page
    else:
        assert comments == ["", "'+49 30 123", "'=HYPERLINK(1)"]
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


# --- who may export, and the links ----------------------------------------------------------------
@pytest.mark.parametrize("url", [DEVICES, PACKS])
@pytest.mark.parametrize("fmt", FORMATS)
def test_anonymous_export_is_sent_to_login(client, db, url, fmt):
    response = client.get(url, {"export": fmt})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unknown_export_format_gives_the_page(reader_client, devices):
    response = reader_client.get(DEVICES, {"export": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("url", [DEVICES, PACKS])
def test_list_links_to_its_exports_keeping_filters_and_sort(reader_client, devices, url):
    html = reader_client.get(url, {"q": "ITC", "sort": "-name", "page": "2"}).content.decode()
    for fmt in FORMATS:
        assert f'href="?q=ITC&amp;sort=-name&amp;export={fmt}"' in html
