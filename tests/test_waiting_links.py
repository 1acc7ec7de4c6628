"""The devices waiting for a license, counted on the dashboard and on Licenses > Deployment, and the
device list they link to: the links list exactly the devices counted (per service, per reason), and a
device waiting for two services counts once in the dashboard's total."""

import re

import pytest
from django.urls import reverse

from devices.engine import run_cycle
from devices.models import LicenseWait
from tests import factories as f

pytestmark = pytest.mark.django_db
DEVICES = reverse("devices:device_list")


@pytest.fixture
def waiting_fleet(db):
    """WE pack of 2 and an EMP pack of 1 for Bremen; three devices in Bremen, one in the root.

    ALD licenses WE for B1 and B2 (registered first) and EMP for B1; B3 waits for WE and EMP,
    B2 for EMP, ROOT for WE: three devices wait, four licenses are wanted."""
    bremen = f.directory("Bremen")
    f.ald_on()
    f.pack("WE-TWOAA", total=2)
    f.pack("EMP-ONEAA", product_type="EMP", total=1)
    f.register_all(conditions={"EMP-ONEAA": [bremen]})
    f.device(n=1, name="B1", directory=bremen)
    f.device(n=2, name="B2", directory=bremen)
    f.device(n=3, name="B3", directory=bremen)
    f.device(n=4, name="ROOT")
    run_cycle()
    waits = sorted(LicenseWait.objects.values_list("device__name", "service", "reason"))
    assert waits == [
        ("B2", "EMP", "no_free_license"),
        ("B3", "EMP", "no_free_license"),
        ("B3", "WE", "no_free_license"),
        ("ROOT", "WE", "no_free_license"),
    ]


def names(client, query):
    response = client.get(DEVICES + "?" + query.replace("&amp;", "&"))
    assert response.status_code == 200
    assert not response.context["filter"].form.errors
    return sorted(row.record.name for row in response.context["table"].page.object_list)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"waiting_for": "WE"}, ["B3", "ROOT"]),
        ({"waiting_for": "EMP"}, ["B2", "B3"]),
        ({"waiting_reason": "no_free_license"}, ["B2", "B3", "ROOT"]),
        ({"waiting_for": "EMP", "waiting_reason": "no_free_license"}, ["B2", "B3"]),
        ({"waiting_for": "EMP", "waiting_reason": "os_too_old"}, []),
    ],
)
def test_device_list_filters_by_the_service_and_reason_waited_for(
    helpdesk_client, waiting_fleet, params, expected
):
    response = helpdesk_client.get(DEVICES, params)
    assert sorted(row.record.name for row in response.context["table"].page.object_list) == expected


def test_an_unknown_reason_is_an_error_naming_the_value(helpdesk_client, waiting_fleet):
    response = helpdesk_client.get(DEVICES, {"waiting_reason": "bored"})
    assert list(response.context["table"].page.object_list) == []
    assert "bored is not one of the available choices" in response.content.decode()


def test_dashboard_counts_waiting_devices_once_and_links_each_service_to_its_devices(
    helpdesk_client, waiting_fleet
):
    html = helpdesk_client.get(reverse("licensing:dashboard")).content.decode()
    total = re.search(r'<a href="([^"]+)">(\d+) device\(s\)</a> wait for a license', html)
    assert total.group(2) == "3"
    assert names(helpdesk_client, total.group(1).split("?")[1]) == ["B2", "B3", "ROOT"]
    rows = dict(re.findall(r'<tr data-service="(\w+)"><td>[^<]*</td><td><a href="([^"]+)">\d+</a>', html))
    assert names(helpdesk_client, rows["WE"].split("?")[1]) == ["B3", "ROOT"]
    assert names(helpdesk_client, rows["EMP"].split("?")[1]) == ["B2", "B3"]


def test_deployment_summary_names_the_reason_and_links_to_exactly_the_devices_counted(
    helpdesk_client, waiting_fleet
):
    html = helpdesk_client.get(reverse("devices:deployment")).content.decode()
    summary = html.split('id="waiting-summary"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td><td><a href=\"[^?]+\?([^\"]+)\">(\d+)</a>", summary)
    assert [(service, label, n) for service, label, _q, n in rows] == [
        ("EMP", "No free license in any eligible pack", "2"),
        ("WE", "No free license in any eligible pack", "2"),
    ]
    for service, _label, query, n in rows:
        listed = names(helpdesk_client, query)
        assert len(listed) == int(n)
        assert listed == (["B2", "B3"] if service == "EMP" else ["B3", "ROOT"])
