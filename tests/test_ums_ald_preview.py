"""Licenses > Deployment > Preview (/ums/deployment/preview/): what the next ALD run would do, worked
out by the engine's dry run; nothing is deployed or written. And the deployments-per-day chart."""

import datetime
import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from ald_portal import clock
from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeploymentSettings, DeviceLicense, LicenseWait, RegisteredPack
from licensing.models import LicenseSlot, ProductPack
from tests import ums_fleet
from tests.conftest import DEMO_NOW

pytestmark = pytest.mark.django_db
URL = reverse("devices:ald_preview")


def snapshot():
    return (
        DeviceLicense.objects.count(),
        DeploymentEvent.objects.count(),
        LicenseWait.objects.count(),
        LicenseSlot.objects.count(),
        sorted(RegisteredPack.objects.values_list("pack_id", "used")),
        sorted(ProductPack.objects.values_list("pack_id", "used")),
    )


def test_preview_says_what_the_next_run_would_do_and_does_nothing(helpdesk_client, db):
    ums_fleet.build(run=False)
    before = snapshot()
    response = helpdesk_client.get(URL)
    assert response.status_code == 200
    assert snapshot() == before
    assert before[:4] == (0, 4, 0, 0)  # only the four pack registrations so far
    html = response.content.decode()
    summary = re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r'<p id="preview-summary">(.*?)</p>', html).group(1))
    )
    assert summary == (
        "4 device(s) would be licensed (5 license(s)); 1 device(s) would wait"
        " (1 license(s): a device can wait for several services)."
    )
    assert response.context["pack_rows"] == [
        ("EMP-HAMBA", 1, {"total": 5, "used": 1, "free": 4}),
        ("WE-LONGA", 1, {"total": 5, "used": 1, "free": 4}),
        ("WE-MIDDA", 1, {"total": 5, "used": 1, "free": 4}),
        ("WE-SOONA", 2, {"total": 5, "used": 2, "free": 3}),
    ]
    assert response.context["waiting_rows"] == [("No eligible pack", 1)]
    assert [d.name for d in response.context["devices"]] == [
        ums_fleet.FORMULA_NAME,
        "ITC-BER-OLD",
        "ITC-BER-SALES",
        "ITC-HAM",
    ]
    # the command line's dry run says the same, and the real run then does exactly that
    out = io.StringIO()
    call_command("ald_run", "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue())["licensed_by_pack"] == {
        p: n for p, n, _ in response.context["pack_rows"]
    }
    report = run_cycle()
    assert dict(report.licensed_by_pack) == {"EMP-HAMBA": 1, "WE-LONGA": 1, "WE-MIDDA": 1, "WE-SOONA": 2}
    assert DeviceLicense.objects.count() == 5


def test_preview_with_ald_off_says_nothing_would_be_done(helpdesk_client, db):
    ums_fleet.build(run=False)
    DeploymentSettings.objects.update(ald_enabled=False)
    html = helpdesk_client.get(URL).content.decode()
    assert '<p id="preview-summary">Nothing would be done: automatic deployment is off.</p>' in html


def test_deployment_page_links_to_the_preview(helpdesk_client, db):
    html = helpdesk_client.get(reverse("devices:deployment")).content.decode()
    assert f'<a href="{URL}">Preview what the next ALD run would do</a>' in html


def test_deployments_per_day_chart_counts_the_last_30_days(helpdesk_client, db):
    ums_fleet.build()  # five licenses deployed on 2026-12-03
    clock.freeze(DEMO_NOW - datetime.timedelta(days=40))  # outside the 30 days
    DeploymentEvent.objects.create(action=DeploymentEvent.Action.DEPLOY, unit_id="00E0C5000009")
    clock.freeze(ums_fleet.LOOK_DAY.replace(hour=0, minute=30))  # 2026-12-20 00:30 Berlin = 12-19 23:30 UTC
    DeploymentEvent.objects.create(action=DeploymentEvent.Action.EXCHANGE, unit_id="00E0C5000001")
    DeploymentEvent.objects.create(action=DeploymentEvent.Action.RENEW, unit_id="00E0C5000002")
    DeploymentEvent.objects.create(
        action=DeploymentEvent.Action.DEPLOY, outcome=DeploymentEvent.Outcome.FAILED, unit_id="00E0C5000003"
    )
    clock.freeze(ums_fleet.LOOK_DAY)
    response = helpdesk_client.get(reverse("devices:deployment"))
    points = response.context["deployments_per_day"]
    assert len(points) == 30 and points[0] == ("11-21", 0) and points[-1] == ("12-20", 2)
    assert dict(points)["12-03"] == 5
    assert sum(n for _, n in points) == 7
    html = response.content.decode()
    assert "<figcaption>Licenses deployed per day, last 30 days</figcaption>" in html
    assert (
        'aria-label="Licenses deployed per day, last 30 days: 7 licenses in all, at most 5 in one column"'
        in html
    )
