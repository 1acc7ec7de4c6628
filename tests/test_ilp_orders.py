"""Orders and Order details: the orders with pack and license counts and EULA state; the EULA accepted
from the list or from the details, once for every pack of the order, recorded as an action naming
the user; filters, sort, stable pages and exports."""

import datetime
import json

import pytest
from django.urls import reverse

from licensing.models import LicensePortalAction, Order, ProductPack, SubscriptionKey
from licensing.services import accept_order_eula
from tests import factories as f
from tests.test_pack_page import details, flash, rows

ORDERS = reverse("licensing:order_list")


def detail(number):
    return reverse("licensing:order_detail", args=[number])


def accept(number):
    return reverse("licensing:order_accept_eula", args=[number])


@pytest.fixture
def orders(db):
    """ORD-1 (2026-11-01, EULA pending): WE-AAAAA 10 and EMP-BBBBB 4 under SK-1; ORD-2 (2026-10-01,
    accepted by carol): WE-CCCCC 5; ORD-3 (no date, pending): no pack."""
    company = f.company()
    key = SubscriptionKey.objects.create(company=company, key="SK-1")
    o1 = Order.objects.create(company=company, number="ORD-1", order_date=datetime.date(2026, 11, 1))
    o2 = Order.objects.create(
        company=company,
        number="ORD-2",
        order_date=datetime.date(2026, 10, 1),
        eula_accepted_by="carol",
        eula_accepted_at=datetime.datetime(2026, 10, 2, 9, 30, tzinfo=datetime.UTC),
    )
    Order.objects.create(company=company, number="ORD-3")
    f.pack("WE-AAAAA", total=10, order=o1, subscription_key=key)
    f.pack("EMP-BBBBB", product_type="EMP", total=4, order=o1, subscription_key=key)
    f.pack("WE-CCCCC", total=5, order=o2)


def test_orders_list_shows_counts_and_eula_state(helpdesk_client, orders):
    listed = rows(helpdesk_client.get(ORDERS), "Order")
    assert [(r["Order"], r["Order date"], r["Packs"], r["Licenses"], r["EULA"]) for r in listed] == [
        ("ORD-1", "2026-11-01", "2", "14", "Not accepted"),
        ("ORD-2", "2026-10-01", "1", "5", "Accepted by carol at 2026-10-02 11:30"),
        ("ORD-3", "—", "0", "0", "Not accepted"),
    ]
    assert listed[0]["_links"]["Order"] == detail("ORD-1")


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"eula": "pending"}, ["ORD-1", "ORD-3"]),
        ({"eula": "accepted"}, ["ORD-2"]),
        ({"q": "emp-bb"}, ["ORD-1"]),  # by pack ID
        ({"q": "SK-1"}, ["ORD-1"]),  # by subscription key
        ({"q": "ORD-2"}, ["ORD-2"]),
        ({"sort": "order_date"}, ["ORD-3", "ORD-2", "ORD-1"]),
        ({"sort": "-license_count"}, ["ORD-1", "ORD-2", "ORD-3"]),
    ],
)
def test_orders_filter_and_sort(helpdesk_client, orders, query, expected):
    assert [r["Order"] for r in rows(helpdesk_client.get(ORDERS, query), "Order")] == expected


def test_orders_pages_neither_repeat_nor_skip(helpdesk_client, db):
    company = f.company()
    Order.objects.bulk_create(
        [
            Order(company=company, number=f"ORD-{i:03d}", order_date=datetime.date(2026, 1, 1))
            for i in range(120)
        ]
    )
    seen = []
    for page in (1, 2, 3):
        seen += [r["Order"] for r in rows(helpdesk_client.get(ORDERS, {"page": page}), "Order")]
    assert sorted(seen) == [f"ORD-{i:03d}" for i in range(120)]


def test_order_details_lists_its_packs_and_keys(helpdesk_client, orders):
    response = helpdesk_client.get(detail("ORD-1"))
    facts = details(response)
    assert facts["Order"] == "ORD-1" and facts["Order date"] == "2026-11-01"
    assert (facts["Product Packs"], facts["Licenses"], facts["Subscription keys"]) == ("2", "14", "SK-1")
    assert facts["EULA"] == "Not accepted"
    packs = rows(response, "Pack ID")
    assert [(p["Pack ID"], p["Total"], p["Subscription key"]) for p in packs] == [
        ("EMP-BBBBB", "4", "SK-1"),
        ("WE-AAAAA", "10", "SK-1"),
    ]
    assert f'action="{accept("ORD-1")}"' in response.content.decode()
    exported = json.loads(helpdesk_client.get(detail("ORD-1"), {"export": "json"}).content)
    assert [p["Pack ID"] for p in exported] == ["EMP-BBBBB", "WE-AAAAA"]


def test_unknown_order_is_404(helpdesk_client, orders):
    assert helpdesk_client.get(detail("ORD-NOPE")).status_code == 404
    assert helpdesk_client.get(detail("ORD-1\x00")).status_code == 404


def test_accept_eula_from_order_details_covers_every_pack_and_is_an_action(ilp_admin_client, orders):
    response = ilp_admin_client.post(accept("ORD-1"), follow=True)
    assert flash(response) == [
        "EULA of order ORD-1 accepted by ilp-admin at 2026-12-03 12:00: it covers every pack of the order."
    ]
    assert details(response)["EULA"] == "Accepted by ilp-admin at 2026-12-03 12:00"
    for pack_id in ("WE-AAAAA", "EMP-BBBBB"):
        pack = ProductPack.objects.select_related("order").get(pack_id=pack_id)
        assert pack.order.eula_accepted_by == "ilp-admin"
    action = LicensePortalAction.objects.get()
    assert (action.actor, action.action, action.order_number, action.pack_id, action.related_pack_ids) == (
        "ilp-admin",
        "EULA_ACCEPTED",
        "ORD-1",
        "",
        ["EMP-BBBBB", "WE-AAAAA"],
    )
    assert (
        action.detail
        == "EULA of order ORD-1 accepted for the order; it covers 2 pack(s): EMP-BBBBB, WE-AAAAA."
    )
    # the packs' pages show it in their history
    history = rows(ilp_admin_client.get(reverse("licensing:pack_detail", args=["WE-AAAAA"])), "When")
    assert [(h["User"], h["Action"], h["Order"]) for h in history] == [
        ("ilp-admin", "EULA accepted", "ORD-1")
    ]


def test_accept_eula_from_the_list_returns_to_the_list(ilp_admin_client, orders):
    html = ilp_admin_client.get(ORDERS).content.decode()
    assert 'aria-label="Accept the EULA of order ORD-1">Accept EULA</button>' in html
    response = ilp_admin_client.post(accept("ORD-3"), {"next": "list"})
    assert response.status_code == 302 and response["Location"] == ORDERS
    assert Order.objects.get(number="ORD-3").eula_accepted_by == "ilp-admin"


def test_accepting_again_keeps_the_first_acceptance_and_adds_no_action(ilp_admin_client, orders):
    response = ilp_admin_client.post(accept("ORD-2"), follow=True)
    assert flash(response) == ["The EULA of order ORD-2 was already accepted by carol at 2026-10-02 11:30."]
    assert Order.objects.get(number="ORD-2").eula_accepted_by == "carol"
    assert not LicensePortalAction.objects.exists()


def test_read_only_user_sees_disabled_accept_buttons(helpdesk_client, orders):
    html = helpdesk_client.get(ORDERS).content.decode()
    assert 'aria-label="Accept the EULA of order ORD-1" disabled>Accept EULA</button>' in html
    assert '<fieldset class="plain" disabled><button type="submit">Accept EULA</button>' in (
        helpdesk_client.get(detail("ORD-1")).content.decode()
    )


def test_accept_order_eula_service_refuses_an_unknown_order_and_no_actor(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Order 'ORD-X' does not exist."):
        accept_order_eula("ORD-X", actor="bob")
    with pytest.raises(ValidationError, match="Say who accepts the EULA."):
        accept_order_eula("ORD-X", actor=" ")
    assert not LicensePortalAction.objects.exists()


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_orders_export_has_exactly_the_filtered_rows(helpdesk_client, orders, fmt):
    from tests.test_exports import column, read

    response = helpdesk_client.get(ORDERS, {"eula": "pending", "export": fmt})
    export = read(response, fmt)
    assert column(export, fmt, "Order") == ["ORD-1", "ORD-3"]
    assert [str(v) for v in column(export, fmt, "Licenses")] == ["14", "0"]
    header = list(export[0]) if fmt == "json" else export[0]
    assert header == ["Order", "Order date", "Company", "Packs", "Licenses", "EULA"]
