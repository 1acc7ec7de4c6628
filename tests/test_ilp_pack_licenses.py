"""The pack page's licenses: each unit ID links to its device in the UMS (the device list filtered by
that unit ID); the licenses export as CSV, XLSX and JSON. And ``licensing`` stays free of ``devices``."""

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from licensing.services import request_licenses
from tests import factories as f
from tests.test_pack_page import rows

PAGE = reverse("licensing:pack_detail", args=["WE-AAAAA"])
UNITS = ["00E0C5000002", "00E0C5000001", "85641000F615234423"]


@pytest.fixture
def pack(db):
    f.pack("WE-AAAAA", total=10)
    request_licenses("WE-AAAAA", UNITS, ums_fingerprint=f.ums().fingerprint)
    f.device(1)  # holds 00E0C5000001


def test_each_licensed_unit_id_links_to_its_device(helpdesk_client, pack):
    licenses = rows(helpdesk_client.get(PAGE), "Unit ID")
    assert [r["Unit ID"] for r in licenses] == sorted(UNITS)
    devices = reverse("devices:device_list")
    assert [r["_links"]["Device"] for r in licenses] == [f"{devices}?q={u}" for u in sorted(UNITS)]
    # and the device list finds it there
    found = helpdesk_client.get(f"{devices}?q=00E0C5000001").context["table"].page.object_list
    assert [row.record.unit_id for row in found] == ["00E0C5000001"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_the_licenses_of_a_pack_export(helpdesk_client, pack, fmt):
    from tests.test_exports import column, read

    response = helpdesk_client.get(PAGE, {"export": fmt, "sort": "-unit_id"})
    export = read(response, fmt)
    assert (list(export[0]) if fmt == "json" else export[0]) == ["Unit ID", "Bound at", "UMS ID"]
    assert column(export, fmt, "Unit ID") == sorted(UNITS, reverse=True)
    bound_at = "2026-12-03T12:00:00+01:00" if fmt == "json" else "2026-12-03 12:00"
    assert column(export, fmt, "Bound at") == [bound_at] * 3
    assert response["Content-Disposition"] == f'attachment; filename="WE-AAAAA-licenses-2026-12-03.{fmt}"'


def test_licensing_never_imports_devices():
    root = Path(__file__).resolve().parents[1] / "licensing"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n == "devices" or n.startswith("devices.")]
    assert offenders == []
