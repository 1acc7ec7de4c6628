"""Every UMS page for the three roles and for nobody, and its query count with 10 and with 500 rows.

- Anonymous: every URL (GET and POST) is sent to the login page; nothing changes.
- Read-only helpdesk and ILP administrators (who administer the License Portal, not the UMS): read
  every page; every change is refused with 403 and a message, and nothing changes.
- UMS administrators: the change is made, and it is an executed action naming them."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.engine import run_cycle
from devices.models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    Directory,
    RegisteredPack,
)
from tests import factories as f
from tests import ums_fleet

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(db):
    built = ums_fleet.build()
    f.pack("EMP-EXTRA", product_type="EMP", total=3)
    f.register_all()
    return built


def page_urls(fleet):
    return {
        "devices": reverse("devices:device_list"),
        "device": reverse("devices:device_detail", args=[fleet["devices"]["root"].pk]),
        "device_licenses": reverse("devices:device_licenses"),
        "actions": reverse("devices:executed_actions"),
        "directories": reverse("devices:directory_tree"),
        "deployment": reverse("devices:deployment"),
        "preview": reverse("devices:ald_preview"),
        "distribution": reverse("devices:pack_distribution", args=["EMP-EXTRA"]),
        "notifications": reverse("devices:notifications"),
    }


PAGES = [
    "devices",
    "device",
    "device_licenses",
    "actions",
    "directories",
    "deployment",
    "preview",
    "distribution",
    "notifications",
]


def changes(fleet):
    """Per page that changes something: the URL, the POST, and how to see that it took effect."""
    root = fleet["devices"]["root"]
    return {
        "device": (
            reverse("devices:device_detail", args=[root.pk]),
            {"action": "license_manually", "pack_id": "EMP-EXTRA"},
            lambda: list(DeviceLicense.objects.filter(device=root).values_list("pack_id", flat=True)),
            [],
            ["EMP-EXTRA"],
        ),
        "devices": (
            reverse("devices:license_manually"),
            {"scope": "selected", "device": [root.pk], "pack_id": "EMP-EXTRA"},
            lambda: list(DeviceLicense.objects.filter(device=root).values_list("pack_id", flat=True)),
            [],
            ["EMP-EXTRA"],
        ),
        "deployment": (
            reverse("devices:deployment"),
            {"ald_enabled": "on", "sweep_minutes": "15", "exchange_days": "7", "notify_free_below": "10"},
            lambda: DeploymentSettings.load().sweep_minutes,
            5,
            15,
        ),
        "deployment-deactivate": (
            reverse("devices:deployment"),
            {"action": "deactivate", "pack_id": "EMP-EXTRA"},
            lambda: RegisteredPack.objects.get(pack_id="EMP-EXTRA").active,
            True,
            False,
        ),
        "distribution": (
            reverse("devices:pack_distribution", args=["EMP-EXTRA"]),
            {"distribution_method": "DISABLED"},
            lambda: RegisteredPack.objects.get(pack_id="EMP-EXTRA").distribution_method,
            "CONDITIONS",
            "DISABLED",
        ),
    }


CHANGES = ["device", "devices", "deployment", "deployment-deactivate", "distribution"]
READ_ONLY_PAGES = ["device_licenses", "actions", "directories", "preview"]


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_login(client, fleet, page):
    url = page_urls(fleet)[page]
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ["helpdesk_client", "ilp_admin_client", "ums_admin_client"])
def test_every_role_reads_every_page(request, fleet, page, role):
    client = request.getfixturevalue(role)
    response = client.get(page_urls(fleet)[page])
    assert response.status_code == 200
    assert b"<h1>" in response.content


@pytest.mark.parametrize("change", CHANGES)
def test_anonymous_post_is_sent_to_login_and_changes_nothing(client, fleet, change):
    url, data, read, before, _ = changes(fleet)[change]
    events = DeploymentEvent.objects.count()
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert read() == before and DeploymentEvent.objects.count() == events


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("role", ["helpdesk_client", "ilp_admin_client"])
def test_without_the_ums_role_a_change_is_403_and_nothing_changes(request, fleet, change, role):
    client = request.getfixturevalue(role)
    url, data, read, before, _ = changes(fleet)[change]
    events = DeploymentEvent.objects.count()
    response = client.post(url, data)
    assert response.status_code == 403
    assert b"needs the UMS administrator role" in response.content
    assert read() == before and DeploymentEvent.objects.count() == events


@pytest.mark.parametrize("change", CHANGES)
def test_ums_administrator_changes_and_the_change_is_an_executed_action_naming_them(
    ums_admin_client, fleet, change
):
    url, data, read, before, after = changes(fleet)[change]
    last = DeploymentEvent.objects.order_by("-pk").first().pk
    response = ums_admin_client.post(url, data)
    assert response.status_code == 302
    assert read() == after
    new = list(DeploymentEvent.objects.filter(pk__gt=last).values_list("actor", flat=True))
    assert new and set(new) == {"ums-admin"}


@pytest.mark.parametrize("page", READ_ONLY_PAGES)
def test_pages_without_changes_refuse_post(ums_admin_client, fleet, page):
    events = DeploymentEvent.objects.count()
    assert ums_admin_client.post(page_urls(fleet)[page], {"action": "run_ald"}).status_code == 405
    assert DeploymentEvent.objects.count() == events


# --- query counts: 10 rows and 500 rows ---------------------------------------------------------------


def grow(first, n):
    """n more devices in n more directories (a tree three deep), half of them licensed by ALD from a
    new WE pack and half waiting, then one more pack with a free license for each waiting device,
    which the next run would use."""
    top = Directory.objects.create(name=f"Fleet {first}")
    dirs = []
    for i in range(n):
        parent = top if i < 5 else dirs[i % 5]
        dirs.append(Directory.objects.create(name=f"Dir {first + i:04d}", parent=parent))
    f.pack(f"WE-A{first:04d}", total=n // 2)
    f.register_all()
    f.ald_on()
    made = f.devices(n, start=20_000 + first)
    for i, d in enumerate(made):
        d.directory = dirs[i]
        d.site = f"Site {i % 7}"
    Device.objects.bulk_update(made, ["directory", "site"])
    run_cycle()
    f.pack(f"WE-B{first:04d}", total=n // 2, expiry=datetime.date(2027, 6, 1))
    f.register_all()
    return made


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response


def grown_urls(made):
    return {
        "devices": reverse("devices:device_list") + "?service=WE&license=licensed&site=Site+1",
        "device": reverse("devices:device_detail", args=[made[0].pk]),
        "device_licenses": reverse("devices:device_licenses") + "?expiry_state=licensed&sort=-expires_at",
        "actions": reverse("devices:executed_actions") + "?action=deploy&sort=device",
        "directories": reverse("devices:directory_tree"),
        "deployment": reverse("devices:deployment"),
        "preview": reverse("devices:ald_preview"),
        "distribution": reverse("devices:pack_distribution", args=["WE-A0000"]),
        "notifications": reverse("devices:notifications"),
    }


@pytest.mark.parametrize("page", PAGES)
def test_queries_per_page_do_not_grow_from_10_to_500_rows(helpdesk_client, db, page):
    made = grow(0, 10)
    small, response = count_queries(helpdesk_client, grown_urls(made)[page])
    grow(10, 490)
    # 5 + 245 from the A packs; the second run also gives the first 5 waiting devices WE-B0000
    counts = (Device.objects.count(), Directory.objects.count(), DeviceLicense.objects.count())
    assert counts == (500, 502, 255)
    assert DeploymentEvent.objects.count() >= 500
    large, response = count_queries(helpdesk_client, grown_urls(made)[page])
    assert small == large, f"{page}: {small} queries with 10 rows, {large} with 500"
    assert large <= 14
    assert shown(response) == SHOWN_WITH_500[page]


def shown(response):
    """How many rows the page shows (its main list), to be sure the count is of a full page."""
    context = response.context
    if "events" in context and "packs" in context:
        return len(context["packs"].rows)
    if "table" in context:
        return len(context["table"].page.object_list)
    if "roots" in context:
        return sum(1 for _ in _walk(context["roots"]))
    if "devices" in context and "pack_rows" in context:
        return len(list(context["devices"]))
    if "form" in context and "directories" in getattr(context["form"], "fields", {}):
        return len(context["form"].fields["directories"].choices)
    if "history" in context:
        return len(context["history"])
    return len(context["page"].object_list)


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node["children"])


SHOWN_WITH_500 = {
    "devices": 37,
    "device": 1,
    "device_licenses": 50,
    "actions": 50,
    "directories": 502,
    "deployment": 4,
    "preview": 100,
    "distribution": 502,
    "notifications": 0,
}


def export_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        data = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200
    return len(ctx.captured_queries), data


@pytest.mark.parametrize(
    "url",
    [
        reverse("devices:device_licenses") + "?export=csv",
        reverse("devices:device_licenses") + "?export=unit_ids",
        reverse("devices:executed_actions") + "?export=csv&action=deploy",
        reverse("devices:executed_actions") + "?export=xlsx&action=deploy",
    ],
)
def test_export_queries_do_not_grow_from_10_to_500_rows(helpdesk_client, db, url):
    grow(0, 10)
    small, data = export_queries(helpdesk_client, url)
    lines_small = data.count(b"\n")
    grow(10, 490)
    large, data = export_queries(helpdesk_client, url)
    assert small == large, f"{url}: {small} queries with 10 rows, {large} with 500"
    if "xlsx" not in url:
        assert (lines_small, data.count(b"\n")) == ((5 + 1, 255 + 1) if "csv" in url else (5, 255))
