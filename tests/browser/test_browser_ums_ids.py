"""Browser walk-through of UMS IDs and ALD tokens: the License Portal shows the UMS's fingerprint,
auto assign is turned on by a click, an ALD token is generated (shown once) and registered in the
UMS on Licenses > Deployment, whose Test connection then reports the token's pack."""

import pytest

from devices.models import UmsAldToken
from devices.services import ums_identity
from licensing.models import AldToken, SubscriptionKey, UmsId
from tests import factories as f
from tests.browser.test_browser_smoke import PASSWORD, browser, demo, shot  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ums_id_and_ald_token_through_the_pages(live_server, browser, demo):  # noqa: F811
    base = live_server.url
    key = SubscriptionKey.objects.create(company=UmsId.objects.get().company, key="SK-BROWSER-1")
    f.pack("WE-TOKEN", total=4, assign=False, subscription_key=key, company=key.company)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/ilp/")

    page.click("nav >> text=UMS IDs")
    page.wait_for_url(f"{base}/ilp/ums-ids/")
    assert page.locator("code.fingerprint").first.inner_text() == ums_identity().ums_id_fingerprint
    page.click("button:has-text('Turn on')")
    page.wait_for_url(f"{base}/ilp/ums-ids/")
    ums = UmsId.objects.get()
    assert ums.auto_assign is True
    assert page.locator(".message").inner_text() == (
        f"Auto assign for {ums.name} on: future Product Packs are assigned to it."
    )
    shot(page, "ums-ids-01-auto-assign")

    page.click("nav >> text=Subscription keys")
    page.get_by_role("button", name="Generate ALD token for SK-BROWSER-1").click()
    token = page.locator("#new-token code.token").inner_text()
    assert token.startswith("ald_") and AldToken.objects.get().hint == token[:10]
    shot(page, "ums-ids-02-token-shown-once")
    page.get_by_role("link", name="Back to Subscription keys").click()
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    assert page.get_by_role("button", name="Delete ALD token of SK-BROWSER-1").is_visible()
    assert f"{token[:10]}…" in page.locator("main").inner_text()  # the hint only

    page.click("nav >> text=Licenses > Deployment")
    page.fill("#id_token", token)
    page.click("button:has-text('Register ALD token')")
    page.wait_for_url(f"{base}/ums/deployment/")
    assert UmsAldToken.objects.get().token == token
    assert f"{token[:10]}…" in page.locator("#ald-tokens").inner_text()
    page.click("button:has-text('Test connection')")
    page.wait_for_url(f"{base}/ums/deployment/")
    assert "1 through ALD tokens" in page.locator(".message").inner_text()
    shot(page, "ums-ids-03-deployment")
