"""The License Portal dashboard: quick lists (RENEW NOW!, expired, expiring within 30 and 90 days) and
the Product Packs list they open, licenses expiring per month, the use-up forecast at the last 30
days' rate, and the demand of devices waiting for a license (from the UMS)."""

import datetime

import pytest
from django.urls import reverse

from ald_portal import clock
from licensing.models import PackStatus, ProductPack, SubscriptionKey
from licensing.reports import licenses_expiring_per_month, quick_list_counts, used_up_on
from licensing.services import request_licenses
from tests import factories as f
from tests.conftest import DEMO_NOW
from tests.test_pack_page import rows
from tests.test_pages import fleet  # noqa: F401  (a fixture: devices waiting after an ALD cycle)

DASHBOARD = reverse("licensing:dashboard")
PACKS = reverse("licensing:pack_list")
UNITS = [f.mac_for(n) for n in range(1, 100)]


def bind(pack_id, units, days_ago=0):
    clock.freeze(DEMO_NOW - datetime.timedelta(days=days_ago))
    try:
        assert len(request_licenses(pack_id, units, ums_fingerprint=f.ums().fingerprint).granted) == len(
            units
        )
    finally:
        clock.freeze(DEMO_NOW)


@pytest.fixture
def packs(db):
    """Today is 2026-12-03. WE-AAAAA 10 (3 bound today), WE-BBBBB 5 (2 bound 40 days ago), both until
    2027-12-03; EMP-CCCCC 4, EULA pending, until 2026-12-20; WE-SOONX 5 (2 bound today) until
    2026-12-20; WE-NINTY 3 until 2027-02-15; WE-EXPRD 2 (1 bound) expired 2026-11-30; WE-FULLY 2 of 2
    bound today; WE-ARCHV archived, until 2026-12-10."""
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-0001-AAAA")
    f.pack("WE-AAAAA", total=10, subscription_key=key)
    f.pack("WE-BBBBB", total=5, subscription_key=key, start=datetime.date(2026, 1, 1))
    f.pack("EMP-CCCCC", product_type="EMP", total=4, eula=False, expiry=datetime.date(2026, 12, 20))
    f.pack("WE-SOONX", total=5, expiry=datetime.date(2026, 12, 20))
    f.pack("WE-NINTY", total=3, expiry=datetime.date(2027, 2, 15))
    f.pack("WE-EXPRD", total=2)
    f.pack("WE-FULLY", total=2)
    f.pack("WE-ARCHV", total=2, status=PackStatus.ARCHIVED, expiry=datetime.date(2026, 12, 10))
    bind("WE-AAAAA", UNITS[:3])
    bind("WE-BBBBB", UNITS[3:5], days_ago=40)
    bind("WE-SOONX", UNITS[5:7])
    bind("WE-EXPRD", UNITS[7:8])
    bind("WE-FULLY", UNITS[8:10])
    ProductPack.objects.filter(pack_id="WE-EXPRD").update(expiry_date=datetime.date(2026, 11, 30))


def quick_links(response):
    html = response.content.decode()
    start = html.index('<nav class="quick"')
    return html[start : html.index("</nav>", start)]


def test_quick_lists_count_the_packs_in_use_of_each_list(helpdesk_client, packs):
    assert quick_list_counts() == quick_list_counts(clock.today())
    q = quick_list_counts()
    assert (q.expired, q.within_30, q.within_90, q.renew_now) == (1, 2, 3, 2)
    nav = quick_links(helpdesk_client.get(DASHBOARD))
    assert f'<a class="quick-renew" href="{PACKS}?expires=renew">RENEW NOW! (2)</a>' in nav
    assert f'<a href="{PACKS}?expires=expired">Expired (1)</a>' in nav
    assert f'<a href="{PACKS}?expires=30">Expiring ≤ 30 days (2)</a>' in nav
    assert f'<a href="{PACKS}?expires=90">Expiring ≤ 90 days (3)</a>' in nav


@pytest.mark.parametrize(
    "expires, expected",
    [
        ("renew", ["WE-EXPRD", "WE-SOONX"]),  # bound licenses, expired or expiring within 30 days
        ("expired", ["WE-EXPRD"]),
        ("30", ["EMP-CCCCC", "WE-SOONX"]),
        ("90", ["EMP-CCCCC", "WE-NINTY", "WE-SOONX"]),
    ],
)
def test_each_quick_list_opens_the_filtered_pack_list(helpdesk_client, packs, expires, expected):
    response = helpdesk_client.get(PACKS, {"expires": expires})
    assert [r["Pack ID"] for r in rows(response, "Pack ID")] == expected


def test_licenses_expiring_per_month_for_the_next_12_months(helpdesk_client, packs):
    points = licenses_expiring_per_month()
    assert [label for label, _ in points] == [
        "2026-12", "2027-01", "2027-02", "2027-03", "2027-04", "2027-05",
        "2027-06", "2027-07", "2027-08", "2027-09", "2027-10", "2027-11",
    ]  # fmt: skip
    # December: EMP-CCCCC 4 + WE-SOONX 5 (archived and expired packs left out); February: WE-NINTY 3;
    # WE-AAAAA and the other packs until 2027-12-03 fall after the 12 months.
    assert dict(points) == {label: 0 for label, _ in points} | {"2026-12": 9, "2027-02": 3}
    html = helpdesk_client.get(DASHBOARD).content.decode()
    assert "<figcaption>Licenses expiring per month, next 12 months</figcaption>" in html
    assert "<title>2026-12: 9 licenses</title>" in html and "<title>2027-02: 3 licenses</title>" in html
    assert "<figcaption>Licenses used per product type</figcaption>" in html
    assert (
        "Workspace Edition: 9 of 25 used" in html
    )  # in force: AAAAA 3/10, BBBBB 2/5, SOONX 2/5, NINTY 0/3, FULLY 2/2


def test_nothing_on_the_dashboard_comes_from_another_host(helpdesk_client, packs):
    html = helpdesk_client.get(DASHBOARD).content.decode()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert (
        "https://" not in html and "<script" not in html and "//" not in html.replace("http://www.w3.org", "")
    )


def test_used_up_forecast_extrapolates_the_last_30_days(helpdesk_client, packs):
    today = clock.today()
    assert used_up_on(7, 3, today) == datetime.date(2027, 2, 11)  # 7 free at 3 per 30 days: 70 days
    assert used_up_on(5, 0, today) is None
    assert used_up_on(0, 0, today) == today
    forecast = {
        r["Pack ID"]: r["Used up at the last 30 days' rate"]
        for r in rows(helpdesk_client.get(DASHBOARD), "Pack ID")
    }
    assert forecast == {
        "WE-AAAAA": "2027-02-11 (3 bound in 30 days)",
        "WE-BBBBB": "not at this rate",  # its 2 licenses were bound 40 days ago
        "EMP-CCCCC": "not at this rate",
        "WE-SOONX": "2027-01-17 (after its expiry)",  # 3 free at 2 per 30 days: 45 days
        "WE-NINTY": "not at this rate",
        "WE-EXPRD": "expired",  # an expired pack binds no more licenses, whatever its rate
        "WE-FULLY": "used up",
    }


def test_a_license_bound_exactly_30_days_ago_counts_and_31_days_ago_does_not(helpdesk_client, db):
    f.pack("WE-EDGE1", total=4, start=datetime.date(2026, 1, 1))
    f.pack("WE-EDGE2", total=4, start=datetime.date(2026, 1, 1))
    bind("WE-EDGE1", UNITS[:1], days_ago=30)
    bind("WE-EDGE2", UNITS[:1], days_ago=31)  # each: 3 free; at 1 per 30 days, 90 days
    forecast = {
        r["Pack ID"]: r["Used up at the last 30 days' rate"]
        for r in rows(helpdesk_client.get(DASHBOARD), "Pack ID")
    }
    assert forecast == {"WE-EDGE1": "2027-03-03 (1 bound in 30 days)", "WE-EDGE2": "not at this rate"}


def test_demand_per_service_and_the_licenses_that_would_serve_it(helpdesk_client, fleet):  # noqa: F811
    # The fleet after one ALD cycle: EMP-CCCCC (3) is used up and two Bremen devices wait for an EMP
    # license; the IGEL OS 10 device waits for Workspace Edition because its OS is too old.
    response = helpdesk_client.get(DASHBOARD)
    demand = {d.service: d for d in response.context["demand"]}
    assert sorted(demand) == ["EMP", "WE"]
    assert (demand["EMP"].waiting, demand["EMP"].more_licenses) == (2, 2)
    assert (demand["WE"].waiting, demand["WE"].more_licenses) == (1, 0)
    assert demand["WE"].by_reason == {"IGEL OS version too old for this license type": 1}
    table = {r["Service"]: r for r in rows(response, "Service")}
    assert [
        table["Enterprise Management Pack (EMP)"][c] for c in ("Devices waiting", "More licenses needed")
    ] == [
        "2",
        "2",
    ]
    assert (
        table["Workspace Edition (WE)"]["Why they wait"] == "IGEL OS version too old for this license type: 1"
    )
    assert table["Enterprise Management Pack (EMP)"]["_links"]["Devices waiting"] == (
        reverse("devices:device_list") + "?waiting_for=EMP"
    )
    html = response.content.decode()
    assert "3 device(s)</a> wait for a license; 2 more license(s) would serve them" in html


def test_dashboard_without_waiting_devices_says_so(helpdesk_client, packs):
    html = helpdesk_client.get(DASHBOARD).content.decode()
    assert "No device waits for a license." in html
    assert "0 device(s)</a> wait for a license; 0 more license(s) would serve them" in html
