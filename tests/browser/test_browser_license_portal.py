"""Browser check of the License Portal pages (Debian chromium through Playwright, live server): each
page at phone width (390 px) scrolls no sideways, every form control has a label, and the keyboard
alone searches hardware and accepts an EULA. Screenshots go to test-artifacts/browser/."""

import os

import pytest
from django.contrib.auth.models import Group

from ald_portal.roles import ILP_ADMIN
from licensing.models import LicensePortalAction, Order, SubscriptionKey
from licensing.services import request_licenses
from tests import factories as f
from tests.browser.test_browser_smoke import PHONE_WIDTH, TOLERANCE, browser, shot  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    ("dashboard", "/ilp/"),
    ("orders", "/ilp/orders/"),
    ("order", "/ilp/orders/ORD-PEND/"),
    ("search", "/ilp/search-hardware/?hardware=00:e0:c5:00:00:01"),
    ("keys", "/ilp/subscription-keys/"),
    ("packs", "/ilp/packs/"),
    ("pack", "/ilp/packs/WE-AAAAA/"),
    ("activity", "/ilp/activity/"),
]

UNLABELLED = """() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea, main button')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.innerText.trim()))
  .map(e => e.outerHTML.slice(0, 120))"""


@pytest.fixture
def data(django_user_model):
    key = SubscriptionKey.objects.create(company=f.company("Acme GmbH", "GA-000001"), key="SK-0001-AAAA")
    f.pack("WE-AAAAA", total=10, subscription_key=key, comment="Berlin office, second floor")
    pending = Order.objects.create(company=f.company(), number="ORD-PEND")
    f.pack("EMP-BBBBB", product_type="EMP", total=4, order=pending, subscription_key=key)
    request_licenses("WE-AAAAA", [f.mac_for(n) for n in range(1, 8)], ums_fingerprint=f.ums().fingerprint)
    user = django_user_model.objects.create_user("ilpadmin", password="browser-ilp-pw")
    user.groups.add(Group.objects.get(name=ILP_ADMIN))


def test_license_portal_pages_at_phone_width_and_by_keyboard(live_server, browser, data):  # noqa: F811
    base = live_server.url
    page = browser.new_page(viewport={"width": PHONE_WIDTH, "height": 844})
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/")
    page.fill("#id_username", "ilpadmin")
    page.fill("#id_password", "browser-ilp-pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ilp/")

    requested = []
    page.on("request", lambda r: requested.append(r.url))
    for name, path in PAGES:
        page.goto(base + path)
        shot(page, f"ilp-phone-{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH + TOLERANCE, f"{path} is {width}px wide at {PHONE_WIDTH}px"
        assert page.evaluate(UNLABELLED) == [], path
    assert [u for u in requested if not u.startswith(base)] == []  # nothing from another host

    # Search hardware by keyboard: type a MAC with dashes in lower case, press Enter.
    page.goto(f"{base}/ilp/search-hardware/")
    page.focus("#id_hardware")
    page.keyboard.type("00-e0-c5-00-00-03")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "hardware=" in url)
    cells = page.locator(".scroll table tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == "00E0C5000003" and cells[2] == "WE-AAAAA"

    # Accept the EULA of ORD-PEND from the Orders list: Tab to its button, press Enter.
    page.goto(f"{base}/ilp/orders/")
    button = page.locator('button[aria-label="Accept the EULA of order ORD-PEND"]')
    for _ in range(60):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    else:
        raise AssertionError("the Accept EULA button is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.message-success")
    shot(page, "ilp-phone-orders-accepted")
    assert Order.objects.get(number="ORD-PEND").eula_accepted_by == "ilpadmin"
    assert LicensePortalAction.objects.get().actor == "ilpadmin"
