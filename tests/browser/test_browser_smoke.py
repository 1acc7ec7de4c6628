"""Browser smoke test: Debian chromium through Playwright against the live server, on the demo data.

Log in through the form, read the dashboard, filter the device list, switch ALD off and on through
the Deployment form, and check every page at phone width (390 px) does not scroll sideways. A
screenshot per step goes to test-artifacts/browser/ (gitignored)."""

import io
import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeploymentSettings, LicenseWait
from licensing.models import PackStatus, ProductPack
from tests.conftest import missing_service

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still plain
# synchronous code, so Django's async-safety guard must be told (before Playwright starts).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PHONE_WIDTH = 390
TOLERANCE = 2  # px: sub-pixel rounding, never a real overflow
PASSWORD = "browser-admin-pw"


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        missing_service(f"browser test needs Debian chromium at {CHROMIUM} (make browser installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("browser test needs the playwright package (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's loop ran opened connections in that context; close
            # them here, or PostgreSQL refuses to drop the test database at the end of the run.
            connections.close_all()


@pytest.fixture
def demo(django_user_model):
    """The demo company, packs and inventory, an ALD cycle run, and an administrator."""
    call_command("seed_demo", stdout=io.StringIO())
    run_cycle()
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def cell_texts(row):
    return [t.strip() for t in row.locator("td").all_inner_texts()]


def test_admin_walks_through_the_first_pages(live_server, browser, demo):
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)

    # 1. Log in through the login form; the portal lands on the dashboard.
    page.goto(f"{base}/ums/devices/")
    assert page.url == f"{base}/login/?next=/ums/devices/"
    page.goto(f"{base}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    shot(page, "01-login")
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/ilp/")
    assert page.locator(".logout span").inner_text() == "admin"

    # 2. Dashboard: the WE row shows the Workspace Edition packs in force, counted here pack by pack.
    in_force = [
        p for p in ProductPack.objects.filter(product_type="WE") if p.effective_status() == PackStatus.ACTIVE
    ]
    used, total = sum(p.used for p in in_force), sum(p.total_licenses for p in in_force)
    assert 0 < used <= total
    we = page.locator('table.consumption tr[data-product-type="WE"]')
    cells = cell_texts(we)
    assert cells[0] == "Workspace Edition (WE)"
    assert cells[1:5] == [str(len(in_force)), str(used), str(total), str(total - used)]
    assert cells[5] == f"{round(100 * used / total)}%"
    assert "Demo Company AG" in page.locator("p.company").inner_text()
    assert "GA-100234" in page.locator("p.company").inner_text()
    shot(page, "02-dashboard")

    # 3. Device list, filtered by license state through the filter form.
    page.click("nav >> text=Devices")
    page.wait_for_url(f"{base}/ums/devices/")
    page.select_option("#id_license_state", "waiting")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r".*license_state=waiting.*"))
    waiting = LicenseWait.objects.values("device").distinct().count()
    assert 0 < waiting <= 50
    assert page.locator("p.muted .count").inner_text() == f"{waiting} device(s)"
    rows = page.locator(".scroll table tbody tr")
    assert rows.count() == waiting
    states = rows.locator("td:nth-child(9)").all_inner_texts()  # after the checkbox column
    assert all(s.startswith("Waiting") for s in states), states
    shot(page, "03-devices-waiting")

    # 4. Deployment: switch ALD off, then on again, through the form.
    page.click("nav >> text=Licenses > Deployment")
    page.wait_for_url(f"{base}/ums/deployment/")
    assert DeploymentSettings.load().ald_enabled
    for enable, change in ((False, "on -> off"), (True, "off -> on")):
        page.set_checked("#id_ald_enabled", enable)
        page.click("button:has-text('Save')")
        page.wait_for_url(f"{base}/ums/deployment/")
        message = page.locator("p.message-success")
        assert message.inner_text() == f"Enable automatic deployment: {change}"
        assert page.is_checked("#id_ald_enabled") is enable
        assert DeploymentSettings.load().ald_enabled is enable
        newest = cell_texts(page.locator(".scroll table").nth(1).locator("tbody tr").first)
        assert newest[1:4] == ["admin", "Settings changed", "Success"]
        assert newest[-1] == f"Enable automatic deployment: {change}"
        shot(page, f"04-deployment-ald-{'on' if enable else 'off'}")
    assert DeploymentEvent.objects.filter(actor="admin", action="settings").count() == 2

    # 5. Phone width: no page scrolls sideways; wide tables scroll inside their .scroll wrapper.
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    for name, path in (
        ("dashboard", "/ilp/"),
        ("devices", "/ums/devices/"),
        ("deployment", "/ums/deployment/"),
    ):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        shot(page, f"05-phone-{name}")
        assert width <= PHONE_WIDTH + TOLERANCE, f"{path} is {width}px wide at {PHONE_WIDTH}px"
        inner = page.evaluate(
            "Math.max(...[...document.querySelectorAll('.scroll')].map(e => e.scrollWidth - e.clientWidth))"
        )
        assert inner > 0, f"{path}: expected a table wider than the phone, scrolling in its wrapper"
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")
    width = page.evaluate("document.documentElement.scrollWidth")
    shot(page, "06-phone-logged-out")
    assert width <= PHONE_WIDTH + TOLERANCE
