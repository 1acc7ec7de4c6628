"""Every page of both sides, found from the URL configuration (so a new page cannot be forgotten):

- anonymous: sent to the login page, for GET and POST alike;
- read-only helpdesk: reads the page; a POST answers 403 (or 405 where the page takes no POST) and
  changes nothing;
- no page refers to anything on another host (scripts, styles, images, links to CDNs).

The page modules test what each administrator can change; this module proves no page was left open.
"""

import io
import re

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Sum
from django.urls import URLPattern, URLResolver, get_resolver

from devices.engine import run_cycle
from devices.models import DeviceLicense, LicenseStatus
from licensing.models import Order, ProductPack, SubscriptionKey, UmsId

pytestmark = pytest.mark.django_db

NAMESPACES = ("licensing", "devices")
# a real value for each URL parameter, taken from the demo data
SAMPLES = {
    "pack_id": lambda: ProductPack.objects.filter(product_type="WE").order_by("pack_id").first().pack_id,
    # a licensed device, and its current license (the license file URL names both)
    "pk": lambda: _license().device_id,
    "license_pk": lambda: _license().pk,
    "action": lambda: "comment",
    "number": lambda: Order.objects.order_by("number").first().number,
}
# where a parameter means something else on one page
OVERRIDES = {
    ("licensing:ums_id_certificate", "pk"): lambda: UmsId.objects.order_by("pk").first().pk,
    ("licensing:ums_id_action", "pk"): lambda: UmsId.objects.order_by("pk").first().pk,
    ("licensing:ums_id_action", "action"): lambda: "rename",
    ("licensing:ald_token_action", "pk"): lambda: SubscriptionKey.objects.order_by("pk").first().pk,
    ("licensing:ald_token_action", "action"): lambda: "generate",
}


def _license():
    return DeviceLicense.objects.filter(status=LicenseStatus.CURRENT).order_by("device_id", "pk").first()


def _patterns(resolver, namespace=None, prefix=""):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            yield from _patterns(p, p.namespace or namespace, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and namespace in NAMESPACES:
            yield f"{namespace}:{p.name}", prefix + str(p.pattern)


PAGES = sorted(set(_patterns(get_resolver())))


def _url(route, page=""):
    def fill(match):
        name = match.group(1).split(":")[-1]
        if (page, name) in OVERRIDES:
            return str(OVERRIDES[page, name]())
        assert name in SAMPLES, f"add a sample value for the URL parameter {name!r} to SAMPLES"
        return str(SAMPLES[name]())

    return "/" + re.sub(r"<([^>]+)>", fill, route)


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=io.StringIO())
    run_cycle()


def _snapshot():
    """Row counts of every model on both sides, and the packs' used counters."""
    counts = {
        m._meta.label: m.objects.count() for app in NAMESPACES for m in apps.get_app_config(app).get_models()
    }
    counts["used"] = ProductPack.objects.aggregate(n=Sum("used"))["n"]
    return counts


def test_the_url_configuration_has_the_pages_of_both_sides():
    names = {name for name, _ in PAGES}
    assert {
        "licensing:dashboard",
        "licensing:pack_list",
        "devices:device_list",
        "devices:deployment",
    } <= names


@pytest.mark.parametrize("name,route", PAGES, ids=[n for n, _ in PAGES])
def test_anonymous_is_sent_to_login(client, demo, name, route):
    url = _url(route, name)
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, (name, method.__name__)
        assert response["Location"].startswith("/login/?next="), (name, response["Location"])


@pytest.mark.parametrize("name,route", PAGES, ids=[n for n, _ in PAGES])
def test_helpdesk_reads_but_cannot_change(helpdesk_client, demo, name, route):
    url = _url(route, name)
    response = helpdesk_client.get(url)
    # action URLs answer a GET with a redirect to their page or with 405; pages render
    assert response.status_code in (200, 302, 405), (name, response.status_code)
    if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
        html = response.content.decode()
        foreign = re.findall(r'(?:src|href|action)="((?:https?:)?//[^"]*)"', html)
        assert not foreign, f"{name} refers to another host: {foreign}"
    before = _snapshot()
    response = helpdesk_client.post(url, {"action": "save", "comment": "helpdesk was here"})
    assert response.status_code in (403, 405), (name, response.status_code)
    assert _snapshot() == before, name
