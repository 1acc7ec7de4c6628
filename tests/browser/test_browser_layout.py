"""Layout of the main pages in Debian chromium through Playwright (live server, demo data).

At phone width (390 px) no page scrolls sideways, the top bar is one compact line whose "Menu" (a
native details element) opens by keyboard even without JavaScript and reaches every link, dates in the
"At" column and unit IDs and MACs in the device list are not torn apart. At laptop width (1366 px) the
menu's links sit in the bar, no table cell that holds one token (a date, an ID, an IP address, a word)
is broken over two lines, the Registered packs' actions are on screen and the deployments chart shows
its first label whole. Screenshots go to test-artifacts/browser/layout-*.png."""

import os

import pytest

from devices.models import DeviceLicense, RegisteredPack
from licensing.models import ProductPack
from tests.browser.test_browser_smoke import (  # noqa: F401 (fixtures)
    PASSWORD,
    PHONE_WIDTH,
    TOLERANCE,
    browser,
    demo,
    shot,
)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": PHONE_WIDTH, "height": 844}
TOP_BAR_MAX = 120  # px at phone width: the bar was 250 px (six lines of links) before the menu
NAV_LINKS = [
    "Dashboard",
    "Orders",
    "Product Packs",
    "UMS IDs",
    "Search hardware",
    "Subscription keys",
    "Activity",
    "Devices",
    "Directories",
    "Licenses > Deployment",
    "Device Licenses",
    "Executed actions",
    "Notifications",
    "Admin",
]

# How many lines the text of an element takes: the rectangles of its text nodes, grouped into lines by
# vertical overlap (an inline badge or link on the same line overlaps; a wrapped line lies below).
LINES = """(el) => {
  const rects = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) rects.push(r);
  }
  rects.sort((a, b) => a.top - b.top);
  let lines = 0, bottom = -Infinity;
  for (const r of rects) {
    if (r.top >= bottom - 1) { lines++; bottom = r.bottom; } else { bottom = Math.max(bottom, r.bottom); }
  }
  return lines;
}"""

# Every rendered table cell of main whose text is one token (no whitespace) shorter than 20 characters
# and takes more than one line: a date split as "2027-12-" / "01", "Expire" / "d", "WE-" / "NT6ZM".
# Longer tokens (fingerprints, tokens) may wrap.
BROKEN_TOKENS = f"""() => {{
  const lines = {LINES};
  return [...document.querySelectorAll('main td')]
    .filter(td => td.getClientRects().length)
    .map(td => [td.textContent.trim(), td])
    .filter(([t]) => t && !/\\s/.test(t) && t.length < 20)
    .map(([t, td]) => [t, lines(td)])
    .filter(([, n]) => n > 1)
    .map(([t, n]) => `${{t}} (${{n}} lines)`);
}}"""

# Lines of each cell of the "At" column (date and time of an executed action) of every table on the page.
AT_COLUMN_LINES = f"""() => {{
  const lines = {LINES};
  return [...document.querySelectorAll('main table')]
    .filter(t => t.querySelector('thead th') && t.querySelector('thead th').textContent.trim() === 'At')
    .flatMap(t => [...t.querySelectorAll('tbody tr td:first-child')])
    .map(td => [td.textContent.trim(), lines(td)]);
}}"""


def main_pages():
    pack = ProductPack.objects.order_by("-used", "pack_id").first()
    device_id = DeviceLicense.objects.order_by("device__name").values_list("device_id", flat=True).first()
    return [
        ("dashboard", "/ilp/"),
        ("packs", "/ilp/packs/"),
        ("pack", f"/ilp/packs/{pack.pack_id}/"),
        ("ums-ids", "/ilp/ums-ids/"),
        ("orders", "/ilp/orders/"),
        ("devices", "/ums/devices/"),
        ("device", f"/ums/devices/{device_id}/"),
        ("deployment", "/ums/deployment/"),
        ("device-licenses", "/ums/device-licenses/"),
        ("actions", "/ums/actions/"),
    ]


def log_in(browser, base, viewport, **context):  # noqa: F811
    page = browser.new_context(viewport=viewport, **context).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ilp/")
    return page


def nav_links(page):
    return page.get_by_role("navigation", name="Main").locator("a")


def test_main_pages_fit_a_phone_with_a_compact_menu(live_server, browser, demo):  # noqa: F811
    base = live_server.url
    page = log_in(browser, base, PHONE)
    for name, path in main_pages():
        page.goto(base + path)
        shot(page, f"layout-phone-{name}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH + TOLERANCE, f"{path} is {width}px wide at {PHONE_WIDTH}px"
        bar = page.locator("header.topbar").bounding_box()
        assert bar["height"] <= TOP_BAR_MAX, f"{path}: the top bar is {bar['height']}px tall"
        # collapsed: its links are hidden until the menu is opened, the "Menu" toggle is on screen
        assert page.locator("details.menu").get_attribute("open") is None
        assert nav_links(page).first.is_hidden()
        summary = page.locator("details.menu > summary")
        assert summary.inner_text().strip().startswith("Menu") and summary.is_visible()

    # The At column of the executed actions: date and time, never "2026-12-" / "04" / "10:37" or a
    # character per line.
    for path in ("/ums/actions/", "/ums/deployment/"):
        page.goto(base + path)
        at = page.evaluate(AT_COLUMN_LINES)
        assert at, f"{path}: no At column"
        torn = [f"{t} ({n} lines)" for t, n in at if n > 2]
        assert torn == [], f"{path}: {len(torn)} of {len(at)} At cells torn: {torn[:5]}"
    # The device list: unit IDs and MACs on one line each (they wrapped over 3-4 lines).
    page.goto(f"{base}/ums/devices/")
    headers = [h.strip() for h in page.locator(".scroll table thead th").all_inner_texts()]
    for column in ("Unit ID", "MAC"):
        cells = page.locator(f".scroll table tbody td:nth-child({headers.index(column) + 1})")
        assert cells.count() > 10
        wrapped = [(c.inner_text(), n) for c in cells.all() if (n := c.evaluate(LINES)) != 1]
        assert wrapped == [], f"{column} cells over several lines: {wrapped[:5]}"


def test_the_phone_menu_works_by_keyboard_without_javascript(live_server, browser, demo):  # noqa: F811
    base = live_server.url
    page = log_in(browser, base, PHONE, java_script_enabled=False)
    page.goto(f"{base}/ums/deployment/")
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('details.menu > summary')")
    page.keyboard.press("Enter")
    assert page.locator("details.menu").get_attribute("open") is not None
    links = nav_links(page)
    assert links.all_inner_texts() == NAV_LINKS
    for link in links.all():
        box = link.bounding_box()
        assert link.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, (
            link.inner_text()
        )
        assert box["height"] >= 24, f"{link.inner_text()}: a {box['height']}px tap target"
    shot(page, "layout-phone-menu-open")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Dashboard"
    for _ in range(NAV_LINKS.index("Device Licenses")):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Device Licenses"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ums/device-licenses/")
    assert page.locator("h1").inner_text() == "Device Licenses"
    # Space opens and closes it as well
    page.locator("details.menu > summary").focus()
    page.keyboard.press(" ")
    assert nav_links(page).first.is_visible()
    page.keyboard.press(" ")
    assert nav_links(page).first.is_hidden()


def test_tables_keep_words_whole_at_laptop_width(live_server, browser, demo):  # noqa: F811
    base = live_server.url
    page = log_in(browser, base, DESKTOP)
    width = DESKTOP["width"]
    checked = 0
    for name, path in main_pages():
        page.goto(base + path)
        shot(page, f"layout-desktop-{name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width + TOLERANCE, path
        # the menu's links are in the bar, no toggle to open
        assert nav_links(page).all_inner_texts() == NAV_LINKS
        assert all(link.is_visible() for link in nav_links(page).all()), path
        assert page.locator("details.menu > summary").is_hidden()
        assert page.locator("header.topbar").bounding_box()["height"] <= 100, path  # two or three lines
        broken = page.evaluate(BROKEN_TOKENS)
        assert broken == [], f"{path}: {len(broken)} cells break their one word: {broken[:8]}"
        checked += page.locator("main td").count()
    assert checked > 500  # the pages had their tables

    # Registered packs: its action buttons and links are on screen.
    page.goto(f"{base}/ums/deployment/")
    actions = page.locator(".scroll table td.actions").locator("button, a")
    assert actions.count() == 2 * RegisteredPack.objects.count() > 0  # Deactivate and Edit conditions
    for action in actions.all():
        box = action.bounding_box()
        assert box["x"] + box["width"] <= width, f"{action.inner_text()} at x={box['x']}: off screen"
    # The deployments chart: its first label is drawn whole, not clipped to "1-05".
    label = page.locator("figure.chart text.label").first
    label.scroll_into_view_if_needed()
    box = label.bounding_box()
    hit = page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.closest('text') ? e.closest('text').textContent : null; }",
        [box["x"] + 1, box["y"] + box["height"] / 2],
    )
    assert hit == label.text_content(), f"the first chart label {label.text_content()!r} is clipped"
