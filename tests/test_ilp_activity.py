"""License Portal actions: every change (split, merge, remove hardware, comment, EULA accepted) is
one action naming the user, written with the change by the service; a refused change writes none.
The pack page shows the pack's history, the Activity page every action, with filters and export."""

import datetime
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ald_portal import clock
from licensing.models import LicensePortalAction, ProductPack, SubscriptionKey
from licensing.services import (
    accept_eula,
    merge_packs,
    remove_hardware,
    request_licenses,
    set_pack_comment,
    split_pack,
)
from tests import factories as f
from tests.conftest import DEMO_NOW
from tests.test_pack_page import rows

ACTIVITY = reverse("licensing:activity")
UNITS = [f.mac_for(n) for n in range(1, 20)]


def actions():
    return [
        (a.actor, a.action, a.pack_id, a.related_pack_ids, a.order_number, a.subscription_key, a.detail)
        for a in LicensePortalAction.objects.order_by("pk")
    ]


@pytest.fixture
def packs(db):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-1")
    f.pack("WE-AAAAA", total=10, subscription_key=key)
    f.pack("WE-BBBBB", total=5, subscription_key=key)
    f.pack("EMP-CCCCC", product_type="EMP", total=4, eula=False)
    request_licenses("WE-AAAAA", UNITS[:3], ums_fingerprint=f.ums().fingerprint)
    request_licenses("WE-BBBBB", UNITS[3:5], ums_fingerprint=f.ums().fingerprint)


def test_each_change_is_one_action_naming_the_user(packs):
    new = split_pack("WE-AAAAA", count=2, actor="alice")
    clock.freeze(DEMO_NOW + datetime.timedelta(minutes=1))
    merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="bob")
    remove_hardware("WE-BBBBB", [UNITS[3], "00E0C5FFFFFF"], actor="carol", accept_terms=True)
    set_pack_comment("WE-AAAAA", "Berlin", actor="dave")
    set_pack_comment("WE-AAAAA", "Berlin", actor="dave")  # no change: no action
    emp = ProductPack.objects.select_related("order").get(pack_id="EMP-CCCCC")
    accept_eula("EMP-CCCCC", actor="erin")
    accept_eula("EMP-CCCCC", actor="frank")  # already accepted: no action
    assert actions() == [
        (
            "alice",
            "SPLIT",
            "WE-AAAAA",
            [new.pack_id],
            "",
            "SK-1",
            f"2 free licenses split off WE-AAAAA into the new pack {new.pack_id}; WE-AAAAA keeps 8 licenses (3 bound).",
        ),
        (
            "bob",
            "MERGE",
            "WE-AAAAA",
            ["WE-BBBBB"],
            "",
            "SK-1",
            "Merged into WE-AAAAA: WE-BBBBB (5 licenses, 2 bound); WE-AAAAA now has 13 licenses.",
        ),
        (
            # WE-BBBBB was merged: its hardware is removed from where its licenses went
            "carol",
            "REMOVE_HARDWARE",
            "WE-AAAAA",
            ["WE-BBBBB"],
            "",
            "SK-1",
            f"Removed hardware {UNITS[3]} from WE-AAAAA: 1 license(s) freed.",
        ),
        ("dave", "COMMENT", "WE-AAAAA", [], "", "SK-1", "Comment '' -> 'Berlin'"),
        (
            "erin",
            "EULA_ACCEPTED",
            "EMP-CCCCC",
            [],
            emp.order.number,
            "",
            f"EULA of order {emp.order.number} accepted in the pack EMP-CCCCC; it covers 1 pack(s): EMP-CCCCC.",
        ),
    ]
    at = LicensePortalAction.objects.order_by("pk").values_list("at", flat=True)
    assert list(at)[:2] == [DEMO_NOW, DEMO_NOW + datetime.timedelta(minutes=1)]


@pytest.mark.parametrize(
    "change",
    [
        lambda: split_pack("WE-AAAAA", count=9, actor="alice"),
        lambda: merge_packs("WE-AAAAA", ["EMP-CCCCC"], actor="alice"),
        lambda: remove_hardware("WE-AAAAA", [UNITS[0]], actor="alice", accept_terms=False),
        lambda: set_pack_comment("WE-AAAAA", "x" * 501, actor="alice"),
        lambda: accept_eula("WE-NOPE0", actor="alice"),
    ],
    ids=["split", "merge", "remove-hardware", "comment", "eula"],
)
def test_a_refused_change_writes_no_action(packs, change):
    with pytest.raises(ValidationError):
        change()
    assert not LicensePortalAction.objects.exists()


def test_removing_hardware_that_holds_no_license_writes_no_action(packs):
    result = remove_hardware("WE-AAAAA", ["00E0C5FFFFFF"], actor="alice", accept_terms=True)
    assert result.removed == [] and not LicensePortalAction.objects.exists()


def test_the_pack_page_shows_its_history_including_actions_on_other_packs(ilp_admin_client, packs):
    ilp_admin_client.post(
        reverse("licensing:pack_action", args=["WE-AAAAA", "merge"]), {"packs": ["WE-BBBBB"]}
    )
    clock.freeze(DEMO_NOW + datetime.timedelta(hours=1))
    ilp_admin_client.post(reverse("licensing:pack_action", args=["WE-AAAAA", "comment"]), {"comment": "=1+1"})
    for pack_id, expected in (
        ("WE-AAAAA", [("2026-12-03 13:00", "Comment"), ("2026-12-03 12:00", "Merge")]),
        ("WE-BBBBB", [("2026-12-03 12:00", "Merge")]),  # it was merged into WE-AAAAA
        ("EMP-CCCCC", []),
    ):
        history = rows(ilp_admin_client.get(reverse("licensing:pack_detail", args=[pack_id])), "When")
        assert [(h["When"], h["Action"]) for h in history] == expected
        assert all(h["User"] == "ilp-admin" for h in history)


@pytest.fixture
def log(packs):
    split_pack("WE-AAAAA", count=1, actor="alice")
    clock.freeze(DEMO_NOW + datetime.timedelta(days=1))
    set_pack_comment("WE-BBBBB", "=cmd", actor="bob")
    clock.freeze(DEMO_NOW + datetime.timedelta(days=2))
    accept_eula("EMP-CCCCC", actor="alice")


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, [("alice", "EULA accepted"), ("bob", "Comment"), ("alice", "Split")]),
        ({"actor": "ALICE"}, [("alice", "EULA accepted"), ("alice", "Split")]),
        ({"action": "COMMENT"}, [("bob", "Comment")]),
        ({"q": "WE-BBBBB"}, [("bob", "Comment")]),
        ({"since": "2026-12-04", "until": "2026-12-04"}, [("bob", "Comment")]),
        ({"sort": "at"}, [("alice", "Split"), ("bob", "Comment"), ("alice", "EULA accepted")]),
        ({"sort": "actor"}, [("alice", "Split"), ("alice", "EULA accepted"), ("bob", "Comment")]),
    ],
)
def test_activity_lists_filters_and_sorts(helpdesk_client, log, query, expected):
    listed = rows(helpdesk_client.get(ACTIVITY, query), "When")
    assert [(r["User"], r["Action"]) for r in listed] == expected


def test_activity_bad_date_is_a_form_error(helpdesk_client, log):
    response = helpdesk_client.get(ACTIVITY, {"since": "yesterday"})
    assert response.status_code == 200
    assert (
        'data-field="since">&#x27;yesterday&#x27; is not a day; write it as YYYY-MM-DD.'
        in response.content.decode()
    )


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_activity_export_has_the_filtered_rows_and_formulas_as_text(helpdesk_client, log, fmt):
    from tests.test_exports import column, read

    export = read(helpdesk_client.get(ACTIVITY, {"actor": "bob", "export": fmt}), fmt)
    assert column(export, fmt, "User") == ["bob"]
    assert column(export, fmt, "When") == [
        "2026-12-04T12:00:00+01:00" if fmt == "json" else "2026-12-04 12:00"
    ]
    detail = column(export, fmt, "Detail")
    assert detail == ["Comment '' -> '=cmd'"]  # starts with C: not a formula
    comment = json.loads(helpdesk_client.get(ACTIVITY, {"export": "json"}).content)
    assert len(comment) == 3


def test_activity_export_with_a_day_that_is_no_day_is_refused_naming_it(helpdesk_client, log):
    response = helpdesk_client.get(ACTIVITY, {"since": "yesterday", "export": "csv"})
    assert response.status_code == 400
    assert "'yesterday' is not a day; write it as YYYY-MM-DD." in response.content.decode()
    assert "(since)" in response.content.decode()
