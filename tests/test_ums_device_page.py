"""The device page's license information (docs/DOMAIN.md 5.3): per service its pack, expiry (red once
expired, grace included), state and the demo flag; the license history with superseded licenses."""

import datetime
import re

import pytest
from django.urls import reverse

from devices.engine import run_cycle
from devices.models import DeviceLicense
from tests import factories as f
from tests import ums_fleet

pytestmark = pytest.mark.django_db


def table_rows(html, table_id):
    body = re.search(rf'<table class="table" id="{table_id}">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>")[1], re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


def test_a_demo_license_is_flagged(helpdesk_client, db):
    f.ald_on()
    f.pack("DEMO-TRYAA", product_type="DEMO", total=2, expiry=datetime.date(2026, 12, 31))
    f.register_all(method={"DEMO-TRYAA": "ENABLED"})  # not Workspace Edition: conditions by default
    dev = f.device(n=1, name="ITC-DEMO")
    run_cycle()
    html = helpdesk_client.get(reverse("devices:device_detail", args=[dev.pk])).content.decode()
    assert table_rows(html, "current-licenses") == [
        [
            "WE",
            "DEMO-TRYAA",
            "2026-12-31",
            "Licensed",
            "demo",
            "Automatic deployment",
            "2026-12-03 12:00:00",
            "License file",
        ]
    ]


def test_expired_and_grace_dates_are_red_expiring_not(helpdesk_client, db):
    fleet = ums_fleet.build()
    for key, state, red in (
        ("old", "Expired", True),
        ("sales", "Grace", True),
        ("munich", "Expiring", False),
    ):
        html = helpdesk_client.get(
            reverse("devices:device_detail", args=[fleet["devices"][key].pk])
        ).content.decode()
        row = table_rows(html, "current-licenses")[0]
        assert row[3] == state
        assert ('<td class="expired">2026-12-' in html) is red, key


def test_history_keeps_the_superseded_license_of_an_exchange(helpdesk_client, db):
    dev = f.exchanged_device()
    html = helpdesk_client.get(reverse("devices:device_detail", args=[dev.pk])).content.decode()
    history = [row[:5] for row in table_rows(html, "license-history")]
    assert history == [
        ["WE", "WE-LATER", "2027-12-01", "Current", "Automatic exchange"],
        ["WE", "WE-SOONX", "2026-12-06", "Superseded", "Automatic deployment"],
    ]
    assert [row[:2] for row in table_rows(html, "current-licenses")] == [["WE", "WE-LATER"]]
    assert DeviceLicense.objects.filter(device=dev).count() == 2
