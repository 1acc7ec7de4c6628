"""The directory tree (/ums/directories/): each directory with its devices and licensed devices, on
its own and with its subdirectories, linked to the device list filtered to it."""

import re

import pytest
from django.urls import reverse

from tests import factories as f
from tests import ums_fleet

pytestmark = pytest.mark.django_db
URL = reverse("devices:directory_tree")


@pytest.fixture
def fleet(db):
    built = ums_fleet.build()
    floor = f.directory("Floor 2", parent=built["dirs"]["sales"])
    f.device(n=6, name="ITC-FLOOR", directory=floor)
    f.device(n=7, name="ITC-BINNED", directory=built["dirs"]["hamburg"], moved_to_bin=True)
    built["dirs"]["floor"] = floor
    return built


def flat(nodes, depth=0):
    for n in nodes:
        yield (depth, n["name"], n["own"], n["own_licensed"], n["total"], n["total_licensed"])
        yield from flat(n["children"], depth + 1)


def test_tree_counts_devices_and_licensed_devices_own_and_with_subdirectories(helpdesk_client, fleet):
    response = helpdesk_client.get(URL)
    assert response.status_code == 200
    # On 2026-12-20 the Berlin licenses (WE-SOONA) have expired; Munich's expires on the 25th.
    assert list(flat(response.context["roots"])) == [
        (0, "Berlin", 1, 0, 3, 0),
        (1, "Sales", 1, 0, 2, 0),
        (2, "Floor 2", 1, 0, 1, 0),
        (0, "Hamburg", 1, 1, 1, 1),  # the device in the recycle bin is not counted
        (0, "Munich", 1, 1, 1, 1),
    ]
    assert response.context["unfiled"] == {"own": 1, "own_licensed": 0}


def test_counts_on_the_day_the_licenses_were_deployed(helpdesk_client, fleet):
    from ald_portal import clock
    from tests.conftest import DEMO_NOW

    clock.freeze(DEMO_NOW)
    assert list(flat(helpdesk_client.get(URL).context["roots"]))[:3] == [
        (0, "Berlin", 1, 1, 3, 2),
        (1, "Sales", 1, 1, 2, 1),
        (2, "Floor 2", 1, 0, 1, 0),
    ]


def test_each_directory_links_to_the_device_list_showing_as_many_devices(helpdesk_client, fleet):
    html = helpdesk_client.get(URL).content.decode()
    links = re.findall(r'href="(/ums/devices/\?directory=[^"]+)">([^<]+)</a>', html)
    assert [name for _, name in links] == [
        "(root directory)",
        "Berlin",
        "Sales",
        "Floor 2",
        "Hamburg",
        "Munich",
    ]
    shown = {}
    for href, name in links:
        response = helpdesk_client.get(href.replace("&amp;", "&"))
        shown[name] = response.context["table"].paginator.count
    assert shown == {"(root directory)": 1, "Berlin": 3, "Sales": 2, "Floor 2": 1, "Hamburg": 1, "Munich": 1}


@pytest.mark.parametrize("new_parent", ["itself", "below"])
def test_the_admin_refuses_a_parent_that_would_make_a_cycle(admin_client, fleet, new_parent):
    from devices.models import Directory

    sales, floor = fleet["dirs"]["sales"], fleet["dirs"]["floor"]
    parent = sales if new_parent == "itself" else floor
    url = reverse("admin:devices_directory_change", args=[sales.pk])
    response = admin_client.post(url, {"name": "Sales", "parent": parent.pk})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        f"{parent.name} is Sales itself or one of its subdirectories."
    ]
    assert Directory.objects.get(pk=sales.pk).parent_id == fleet["dirs"]["berlin"].pk
    # a parent elsewhere in the tree is fine
    elsewhere = fleet["dirs"]["hamburg"]
    assert admin_client.post(url, {"name": "Sales", "parent": elsewhere.pk}).status_code == 302
    assert Directory.objects.get(pk=sales.pk).parent_id == elsewhere.pk
