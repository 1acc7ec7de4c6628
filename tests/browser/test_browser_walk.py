"""The administrator's day, in a real browser against the portal as `make run` starts it.

A fresh SQLite file is migrated and bootstrapped (demo data, schedules, an administrator), then
`manage.py run_portal` starts the web server and the django-q2 queue worker. Debian chromium, driven
by Playwright, logs in, reads the dashboard, filters the packs, opens a pack, removes hardware, switches
ALD off, registers a device, switches ALD on and sees the worker license the device, then exports the
device list as CSV. A screenshot per step goes to test-artifacts/browser/walk-*.png (gitignored).

The checks read the database file directly (sqlite3), as a second observer beside the browser."""

import csv
import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.test_browser_smoke import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE_WIDTH, TOLERANCE
from tests.conftest import missing_service

pytestmark = pytest.mark.browser

ROOT = Path(settings.BASE_DIR)
NEW_UNIT = "00E0C5B0CAFE"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def portal(tmp_path):
    """`make run`'s steps on a database of its own: migrate, bootstrap, run_portal. Yields (url, db, password)."""
    if not os.path.exists(CHROMIUM):
        missing_service(f"browser test needs Debian chromium at {CHROMIUM} (make browser installs it)")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    db = tmp_path / "portal.sqlite3"
    env.update(DATABASE_URL=f"sqlite:///{db}", ALD_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    env["Q_CLUSTER_NAME"] = f"ald-walk-{os.getpid()}"
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput"], ["bootstrap"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    password = (tmp_path / "admin-password.txt").read_text().strip()
    port = free_port()
    log = open(tmp_path / "run_portal.log", "w")
    proc = subprocess.Popen(
        manage + ["run_portal", "--addr", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the teardown stops server and worker together
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "run_portal.log").read_text()
            try:
                urllib.request.urlopen(f"{url}/login/", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError("run_portal did not answer within 60 s") from None
                time.sleep(0.3)
        yield url, db, password
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def query(db, sql, *params):
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"walk-{name}.png"), full_page=True)


def test_an_administrators_day_in_the_browser(portal):
    from playwright.sync_api import sync_playwright

    base, db, password = portal
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.set_default_timeout(15_000)
            walk(page, base, db, password)
        finally:
            browser.close()


def walk(page, base, db, password):
    # 1. Log in: the bootstrap's administrator, with the password from its file.
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password)
    shot(page, "01-login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/ilp/")

    # 2. The dashboard: company, Global Account ID and the consumption per product type.
    assert "Demo Company AG" in page.locator("main").inner_text()
    assert "GA-100234" in page.locator("main").inner_text()
    (we_used, we_total) = query(
        db,
        "SELECT SUM(used), SUM(total_licenses) FROM licensing_productpack "
        "WHERE product_type = 'WE' AND status = 'ACTIVE' AND (expiry_date IS NULL OR expiry_date >= date('now'))",
    )[0]
    assert 0 < we_used <= we_total
    we_row = page.locator('table.consumption tr[data-product-type="WE"] td')
    assert we_row.nth(2).inner_text() == str(we_used) and we_row.nth(3).inner_text() == str(we_total)
    shot(page, "02-dashboard")

    # 3. Product Packs filtered to Workspace Edition: exactly the WE packs in use.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Product Packs", exact=True).click()
    page.get_by_label("Product type").select_option("WE")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**product_type=WE**")
    we_packs = {
        r[0]
        for r in query(
            db,
            "SELECT pack_id FROM licensing_productpack WHERE product_type = 'WE' AND status NOT IN ('ARCHIVED', 'MERGED')",
        )
    }
    shown = set(page.locator("main table tbody tr td:first-child").all_inner_texts())
    assert shown == we_packs, (shown, we_packs)
    shot(page, "03-packs-we")

    # 4. Open the fullest WE pack and remove the hardware of one of its unit IDs.
    pack_id, unit_id = query(
        db,
        "SELECT p.pack_id, s.unit_id FROM licensing_licenseslot s JOIN licensing_productpack p ON p.id = s.pack_id "
        "WHERE p.product_type = 'WE' AND s.released_at IS NULL ORDER BY p.used DESC, s.unit_id LIMIT 1",
    )[0]
    used_before = query(db, "SELECT used FROM licensing_productpack WHERE pack_id = ?", pack_id)[0][0]
    page.get_by_role("link", name=pack_id, exact=True).click()
    page.wait_for_url(f"{base}/ilp/packs/{pack_id}/")
    assert page.get_by_role("heading", level=1).inner_text() == f"Product Pack {pack_id}"
    page.get_by_label(f"Remove {unit_id}").check()  # the unit's box in the license table
    form = page.locator("#remove-hardware")
    form.get_by_label("I accept the terms and conditions of removing hardware").check()
    form.get_by_role("button", name="Remove hardware").click()
    page.wait_for_url(f"{base}/ilp/packs/{pack_id}/")
    assert unit_id in page.locator("p.message").first.inner_text()
    assert (
        query(db, "SELECT used FROM licensing_productpack WHERE pack_id = ?", pack_id)[0][0]
        == used_before - 1
    )
    assert query(
        db,
        "SELECT COUNT(*) FROM licensing_licenseslot s JOIN licensing_productpack p ON p.id = s.pack_id "
        "WHERE p.pack_id = ? AND s.unit_id = ? AND s.released_at IS NULL",
        pack_id,
        unit_id,
    ) == [(0,)]
    shot(page, "04-pack-hardware-removed")

    # 5. Licenses > Deployment: switch ALD off.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Licenses > Deployment", exact=True
    ).click()
    page.get_by_label("Enable automatic deployment").uncheck()
    page.get_by_role("button", name="Save").first.click()
    page.wait_for_url(f"{base}/ums/deployment/")
    assert not page.get_by_label("Enable automatic deployment").is_checked()
    shot(page, "05-ald-off")

    # 6. Register a device (the admin's Add form); with ALD off it stays unlicensed.
    page.goto(f"{base}/admin/devices/device/add/")
    page.get_by_label("Unit ID").fill(NEW_UNIT)
    page.get_by_label("MAC").fill("00:e0:c5:b0:ca:fe")
    page.get_by_label("Name").fill("walk-new-device")
    firmware = page.get_by_label("Firmware")
    firmware.select_option(label=[o for o in firmware.locator("option").all_inner_texts() if "11." in o][0])
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{base}/admin/devices/device/")
    (device_id,) = query(db, "SELECT id FROM devices_device WHERE unit_id = ?", NEW_UNIT)[0]
    time.sleep(1.5)  # a worker that wrongly licensed it would have done so by now
    assert query(db, "SELECT COUNT(*) FROM devices_devicelicense WHERE device_id = ?", device_id) == [(0,)]
    shot(page, "06-device-registered")

    # 7. Switch ALD on: the queue worker licenses the new device within seconds.
    page.goto(f"{base}/ums/deployment/")
    page.get_by_label("Enable automatic deployment").check()
    page.get_by_role("button", name="Save").first.click()
    page.wait_for_url(f"{base}/ums/deployment/")
    switched_on = time.time()
    assert "off -> on" in page.locator("p.message").first.inner_text()
    page.goto(f"{base}/ums/devices/?q={NEW_UNIT}")
    state = page.locator("main table tbody tr").first
    while "Licensed" not in state.inner_text() and time.time() < switched_on + 20:
        time.sleep(0.5)
        page.reload()
        state = page.locator("main table tbody tr").first
    assert "Licensed" in state.inner_text(), state.inner_text()
    licensed = query(
        db,
        "SELECT service, pack_id FROM devices_devicelicense WHERE device_id = ? AND status = 'CURRENT'",
        device_id,
    )
    assert [service for service, _ in licensed] == ["WE"]
    assert query(
        db, "SELECT COUNT(*) FROM licensing_licenseslot WHERE unit_id = ? AND released_at IS NULL", NEW_UNIT
    ) == [(1,)]
    shot(page, "07-device-licensed")
    page.get_by_role("link", name="walk-new-device").click()
    assert licensed[0][1] in page.locator("main").inner_text()
    shot(page, "08-device-page")

    # 8. Export the licensed devices as CSV: the file holds exactly the filtered rows.
    page.goto(f"{base}/ums/devices/?license_state=licensed")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    # licensed = holds a valid license and waits for no service it lacks (a waiting device is "Waiting")
    valid = (
        "SELECT 1 FROM devices_devicelicense l WHERE l.device_id = d.id AND l.status = 'CURRENT' "
        "AND (l.expires_at IS NULL OR l.expires_at >= date('now')) {}"
    )
    licensed_devices = query(
        db,
        f"SELECT COUNT(*) FROM devices_device d WHERE EXISTS ({valid.format('')}) AND NOT EXISTS ("
        f"SELECT 1 FROM devices_licensewait w WHERE w.device_id = d.id AND NOT EXISTS "
        f"({valid.format('AND l.service = w.service')}))",
    )[0][0]
    assert page.locator("p.muted .count").inner_text() == f"{licensed_devices} device(s)"
    assert len(rows) == licensed_devices > 0
    assert NEW_UNIT in {row["Unit ID"] for row in rows}
    shot(page, "09-devices-export")

    # 9. At phone width the pages of the walk still fit; wide tables scroll inside their wrapper.
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    for path in ("/ilp/", f"/ilp/packs/{pack_id}/", "/ums/deployment/", f"/ums/devices/{device_id}/"):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH + TOLERANCE, f"{path} is {width}px wide at {PHONE_WIDTH}px"
    shot(page, "10-phone")
