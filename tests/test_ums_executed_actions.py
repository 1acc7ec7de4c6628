"""Executed actions (/ums/actions/): every DeploymentEvent, newest first, filtered by action, actor,
device or unit ID, pack, date range and outcome; exported as exactly the filtered rows."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from ald_portal import clock
from devices.models import DeploymentEvent
from tests import ums_fleet
from tests.conftest import DEMO_NOW

pytestmark = pytest.mark.django_db
URL = reverse("devices:executed_actions")


@pytest.fixture
def fleet(db):
    built = ums_fleet.build()  # ALD on 2026-12-03: 4 packs registered, 5 deployments, 1 device waiting
    clock.freeze(DEMO_NOW + datetime.timedelta(days=2))
    DeploymentEvent.objects.create(
        actor="anna", action=DeploymentEvent.Action.SETTINGS, message="Sweep every (minutes): 5 -> 10"
    )
    clock.freeze(ums_fleet.LOOK_DAY)
    DeploymentEvent.objects.create(
        actor="anna",
        action=DeploymentEvent.Action.REMOVE,
        outcome=DeploymentEvent.Outcome.FAILED,
        pack_id="WE-SOONA",
        unit_id="00E0C5000001",
        device=built["devices"]["old"],
        message="=1+1 removal refused",
    )
    return built


def rows(response):
    assert response.status_code == 200
    return [
        (r.actor, r.action, r.unit_id, r.pack_id)
        for r in (row.record for row in response.context["table"].page.object_list)
    ]


def test_newest_first_naming_who_did_it(helpdesk_client, fleet):
    listed = rows(helpdesk_client.get(URL))
    assert len(listed) == DeploymentEvent.objects.count() == 12
    assert listed[:2] == [
        ("anna", "remove", "00E0C5000001", "WE-SOONA"),
        ("anna", "settings", "", ""),
    ]
    assert {actor for actor, *_ in listed[2:]} == {"ALD"}


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            {"action": "deploy", "pack_id": "soona"},
            [("ALD", "deploy", "00E0C5000002", "WE-SOONA"), ("ALD", "deploy", "00E0C5000001", "WE-SOONA")],
        ),
        ({"actor": "ANN"}, [("anna", "remove", "00E0C5000001", "WE-SOONA"), ("anna", "settings", "", "")]),
        (
            {"device": "00:e0:c5:00:00:03"},
            [("ALD", "deploy", "00E0C5000003", "WE-LONGA"), ("ALD", "deploy", "00E0C5000003", "EMP-HAMBA")],
        ),
        (
            {"device": "itc-ham"},
            [("ALD", "deploy", "00E0C5000003", "WE-LONGA"), ("ALD", "deploy", "00E0C5000003", "EMP-HAMBA")],
        ),
        ({"outcome": "waiting"}, [("ALD", "wait", "00E0C5000005", "")]),
        ({"outcome": "failed"}, [("anna", "remove", "00E0C5000001", "WE-SOONA")]),
        ({"since": "2026-12-04", "until": "2026-12-19"}, [("anna", "settings", "", "")]),
        ({"since": "2026-12-20"}, [("anna", "remove", "00E0C5000001", "WE-SOONA")]),
    ],
)
def test_filters_show_exactly_the_matching_actions(helpdesk_client, fleet, params, expected):
    assert rows(helpdesk_client.get(URL, params)) == expected


def test_a_bad_day_is_an_error_naming_the_field_and_value(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"since": "20.12.2026"})
    assert rows(response) == []
    assert "From (YYYY-MM-DD): &#x27;20.12.2026&#x27; is not a day; write it as YYYY-MM-DD." in (
        response.content.decode()
    )


def test_sorting_by_action_keeps_ties_in_primary_key_order(helpdesk_client, fleet):
    listed = rows(helpdesk_client.get(URL, {"sort": "action", "per_page": 3}))
    assert [a for _, a, *_ in listed] == ["deploy", "deploy", "deploy"]
    second = rows(helpdesk_client.get(URL, {"sort": "action", "per_page": 3, "page": 2}))
    assert [a for _, a, *_ in second] == ["deploy", "deploy", "register_pack"]
    deploys = list(
        DeploymentEvent.objects.filter(action="deploy").order_by("pk").values_list("unit_id", "pack_id")
    )
    assert [(u, p) for *_, u, p in listed + second[:2]] == deploys


def test_csv_export_is_streamed_with_exactly_the_filtered_rows_and_formulas_as_text(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"actor": "anna", "export": "csv"})
    assert response.status_code == 200 and response.streaming
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == ["At", "By", "Action", "Outcome", "Device", "Unit ID", "Pack ID", "Service", "Message"]
    assert [line[1:] for line in lines[1:]] == [
        [
            "anna",
            "License removed",
            "Failed",
            "ITC-BER-OLD",
            "00E0C5000001",
            "WE-SOONA",
            "",
            "'=1+1 removal refused",
        ],
        ["anna", "Settings changed", "Success", "", "", "", "", "Sweep every (minutes): 5 -> 10"],
    ]


def test_deployment_page_links_to_the_executed_actions(helpdesk_client, fleet):
    html = helpdesk_client.get(reverse("devices:deployment")).content.decode()
    assert f'<a href="{URL}">All executed actions, with filters and exports</a>' in html
