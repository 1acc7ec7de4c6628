"""Subscription keys: each key with its product, licenses, start and expiration date (its packs'
latest expiry; merged packs left out), its packs and orders; filters, sort, export; a column kept for
the ALD token actions."""

import datetime

import pytest
from django.urls import reverse

from ald_portal import clock
from licensing.models import Order, SubscriptionKey
from licensing.services import merge_packs
from tests import factories as f
from tests.test_pack_page import rows

KEYS = reverse("licensing:subscription_key_list")


@pytest.fixture
def keys(db):
    """SK-A: WE-AAAAA 10 (until 2027-12-03) and WE-AAAAB 5 merged into it, EMP-AAAAC 4 until
    2026-12-20, in orders ORD-A1 and ORD-A2; SK-B: UDP-BBBBB 3, perpetual; SK-C: no pack."""
    company = f.company()
    a, b = (SubscriptionKey.objects.create(company=company, key=k) for k in ("SK-A", "SK-B"))
    SubscriptionKey.objects.create(company=company, key="SK-C")
    o1 = Order.objects.create(company=company, number="ORD-A1")
    o2 = Order.objects.create(
        company=company, number="ORD-A2", eula_accepted_by="x", eula_accepted_at=clock.now()
    )
    start = datetime.date(2026, 6, 1)
    f.pack("WE-AAAAA", total=10, subscription_key=a, order=o2, start=start)
    f.pack("WE-AAAAB", total=5, subscription_key=a, order=o2, start=start)
    f.pack(
        "EMP-AAAAC",
        product_type="EMP",
        total=4,
        subscription_key=a,
        order=o1,
        expiry=datetime.date(2026, 12, 20),
    )
    f.pack("UDP-BBBBB", product_type="UDP", total=3, subscription_key=b, expiry=None, order=None)
    merge_packs("WE-AAAAA", ["WE-AAAAB"], actor="alice")


def test_keys_list_their_expiration_packs_and_orders(helpdesk_client, keys):
    listed = rows(helpdesk_client.get(KEYS), "Subscription key")
    shown = [
        (
            r["Subscription key"],
            r["Product"],
            r["Licenses"],
            r["Start"],
            r["Expiration date"],
            r["Product Packs"],
            r["Orders"],
        )
        for r in listed
    ]
    assert shown == [
        (
            "SK-A",
            "IGEL EMP, IGEL WE",
            "19",
            "2026-06-01",
            "2027-12-03",
            "EMP-AAAAC, WE-AAAAA",
            "ORD-A1, ORD-A2",
        ),
        ("SK-B", "IGEL UDP", "3", "2026-11-03", "perpetual", "UDP-BBBBB", "—"),
        ("SK-C", "—", "0", "—", "—", "—", "—"),
    ]
    assert [r["ALD token"] for r in listed] == ["none", "none", "none"]  # no key has an ALD token yet


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"q": "emp-aaaac"}, ["SK-A"]),
        ({"q": "ORD-A1"}, ["SK-A"]),
        ({"q": "sk-b"}, ["SK-B"]),
        ({"expires": "30"}, []),  # SK-A expires with its latest pack, 2027-12-03
        ({"expires": "90"}, []),
        ({"sort": "-expiration"}, ["SK-B", "SK-A", "SK-C"]),  # perpetual latest, a key without packs earliest
        ({"sort": "-license_count"}, ["SK-A", "SK-B", "SK-C"]),
    ],
)
def test_keys_filter_and_sort(helpdesk_client, keys, query, expected):
    assert [
        r["Subscription key"] for r in rows(helpdesk_client.get(KEYS, query), "Subscription key")
    ] == expected


def test_a_key_expiring_soon_is_in_the_30_day_window(helpdesk_client, keys):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-SOON")
    f.pack("WE-SOON1", total=2, subscription_key=key, expiry=datetime.date(2026, 12, 24))
    f.pack("WE-OLD01", total=2, subscription_key=key, expiry=datetime.date(2026, 11, 1))
    response = helpdesk_client.get(KEYS, {"expires": "30"})
    assert [(r["Subscription key"], r["Expiration date"]) for r in rows(response, "Subscription key")] == [
        ("SK-SOON", "2026-12-24")
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_keys_export(helpdesk_client, keys, fmt):
    from tests.test_exports import column, read

    export = read(helpdesk_client.get(KEYS, {"q": "SK-", "sort": "key", "export": fmt}), fmt)
    assert column(export, fmt, "Subscription key") == ["SK-A", "SK-B", "SK-C"]
    assert column(export, fmt, "Product Packs") == ["EMP-AAAAC, WE-AAAAA", "UDP-BBBBB", ""]
    assert column(export, fmt, "Expiration date") == ["2027-12-03", "perpetual", "—"]
