"""The UMS pages in Debian chromium at phone width (390 px), driven by the keyboard: filter Device
Licenses by a unit ID typed with colons, set a pack's distribution conditions, and check no page
scrolls sideways. Screenshots go to test-artifacts/browser/."""

import os

import pytest

from devices.models import DeploymentEvent, RegisteredPack
from tests import ums_fleet
from tests.browser.test_browser_smoke import PHONE_WIDTH, TOLERANCE, browser, shot  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "ums-admin-browser-pw"


@pytest.fixture
def ums_admin(django_user_model):
    from django.contrib.auth.models import Group

    from ald_portal.roles import UMS_ADMIN, ensure_roles

    ensure_roles()  # a transactional test database starts without the groups
    user = django_user_model.objects.create_user("anna", password=PASSWORD)
    user.groups.add(Group.objects.get(name=UMS_ADMIN))
    return user


def fits(page, path):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + TOLERANCE, f"{path} is {width}px wide at {PHONE_WIDTH}px"


def test_ums_pages_by_keyboard_at_phone_width(live_server, browser, ums_admin):  # noqa: F811
    fleet = ums_fleet.build()
    base = live_server.url
    page = browser.new_page(viewport={"width": PHONE_WIDTH, "height": 844})
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/?next=/ums/device-licenses/")
    page.fill("#id_username", "anna")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ums/device-licenses/")

    # Device Licenses: type a unit ID in colon form into the labelled field, Enter filters.
    page.get_by_label("Unit ID (any form, or part of one)").focus()
    page.keyboard.type("00:e0:c5:00:00:02")
    page.keyboard.press("Enter")
    page.wait_for_url("**unit_id=00*")
    assert page.locator("p.muted .count").inner_text() == "1 license(s)"
    cells = [t.strip() for t in page.locator(".scroll table tbody tr td").all_inner_texts()]
    assert cells[:6] == ["00E0C5000002", "ITC-BER-SALES", "WE", "WE-SOONA", "2026-12-06", "Grace"]
    fits(page, "/ums/device-licenses/")
    shot(page, "ums-01-device-licenses-phone")

    # Distribution conditions: choose Enabled (with conditions) and Munich with the keyboard, save.
    page.goto(f"{base}/ums/deployment/packs/WE-LONGA/distribution/")
    fits(page, "distribution")
    page.get_by_label("Munich").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ums/deployment/")
    rp = RegisteredPack.objects.get(pack_id="WE-LONGA")
    assert sorted(d.name for d in rp.condition_directories.all()) == ["Hamburg", "Munich"]
    event = DeploymentEvent.objects.filter(pack_id="WE-LONGA", action="settings").get()
    assert event.actor == "anna"
    assert page.locator("p.message-success").inner_text() == event.message
    shot(page, "ums-02-deployment-phone")
    fits(page, "/ums/deployment/")

    for path in ("/ums/directories/", "/ums/actions/", "/ums/deployment/preview/", "/ums/devices/"):
        page.goto(base + path)
        shot(page, "ums-03-phone" + path.strip("/").replace("/", "-"))
        fits(page, path)
    assert fleet["devices"]["root"].name == "ITC-ROOT"
