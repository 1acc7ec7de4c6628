"""Every License Portal page for every role (anonymous, read-only helpdesk, UMS administrator, ILP
administrator), and the number of queries of each page and of its exports, at 10 and at 500 rows."""

import csv
import datetime
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ald_portal import clock
from devices.models import LicenseWait
from licensing.models import (
    LicensePortalAction,
    LicenseSlot,
    Order,
    PortalAction,
    ProductPack,
    SubscriptionKey,
    service_for,
)
from tests import factories as f

HW = "00E0C5ABCDEF"  # the unit ID every pack of the world below holds a license for


def url(name, *args):
    return reverse(f"licensing:{name}", args=args)


PAGES = {
    "dashboard": url("dashboard"),
    "packs": url("pack_list"),
    "pack": url("pack_detail", "WE-00000"),
    "orders": url("order_list"),
    "order": url("order_detail", "ORD-BIG"),
    "keys": url("subscription_key_list"),
    "search": url("search_hardware") + "?hardware=00:e0:c5:ab:cd:ef",
    "activity": url("activity"),
}


def world(start, count):
    """``count`` more WE packs, each of its own order and subscription key, holding a license for HW,
    expiring over the next 12 months; as many EMP packs all in order ORD-BIG; WE-00000 gets ``count``
    more licenses and License Portal actions; ``count`` more devices wait for a license."""
    company, ums = f.company(), f.ums()
    today = clock.today()
    big = Order.objects.get_or_create(company=company, number="ORD-BIG")[0]
    orders = Order.objects.bulk_create(
        [Order(company=company, number=f"ORD-{i:05d}", order_date=today) for i in range(start, start + count)]
    )
    keys = SubscriptionKey.objects.bulk_create(
        [SubscriptionKey(company=company, key=f"SK-{i:05d}") for i in range(start, start + count)]
    )

    def pack(pack_id, product_type, order, key, i):
        return ProductPack(
            pack_id=pack_id,
            company=company,
            order=order,
            subscription_key=key,
            product_name=f"IGEL {product_type}",
            product_type=product_type,
            service=service_for(product_type, pack_id),
            total_licenses=1000,
            used=1,
            start_date=today - datetime.timedelta(days=10),
            expiry_date=today + datetime.timedelta(days=1 + i % 360),
            assigned_ums=ums,
        )

    packs = ProductPack.objects.bulk_create(
        [
            pack(f"WE-{i:05d}", "WE", orders[i - start], keys[i - start], i)
            for i in range(start, start + count)
        ]
        + [pack(f"EMP-{i:05d}", "EMP", big, None, i) for i in range(start, start + count)]
    )
    now = clock.now()
    LicenseSlot.objects.bulk_create(
        [
            LicenseSlot(pack=p, unit_id=HW, ums=ums, bound_at=now - datetime.timedelta(days=i % 40))
            for i, p in enumerate(packs)
        ]
    )
    first = ProductPack.objects.get(pack_id="WE-00000")
    LicenseSlot.objects.bulk_create(
        [
            LicenseSlot(pack=first, unit_id=f.mac_for(i), ums=ums, bound_at=now)
            for i in range(start, start + count)
        ]
    )
    ProductPack.objects.filter(pk=first.pk).update(used=1 + start + count)
    LicensePortalAction.objects.bulk_create(
        [
            LicensePortalAction(
                actor="alice",
                action=PortalAction.COMMENT,
                pack_id="WE-00000",
                related_packs=f",WE-{i:05d},",
                order_number=f"ORD-{i:05d}",
                detail=f"=comment {i}",
            )
            for i in range(start, start + count)
        ]
    )
    devices = f.devices(count, start=10_000 + start)
    LicenseWait.objects.bulk_create(
        [LicenseWait(device=d, service="WE", reason="no_free_license") for d in devices]
    )


@pytest.fixture
def small_world(db):
    world(0, 10)


# --- who may see -------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_anonymous_user_is_sent_to_login(client, small_world, page):
    response = client.get(PAGES[page])
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ["helpdesk_client", "ums_admin_client", "ilp_admin_client"])
def test_every_role_reads_every_page(request, small_world, page, role):
    client = request.getfixturevalue(role)
    response = client.get(PAGES[page])
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<span>{client.user.username}</span>" in html
    can_change = role == "ilp_admin_client"
    if page == "pack":
        assert ("Read-only: changing Product Packs" in html) is not can_change
    if page in ("orders", "order"):
        assert (
            "Read-only: accepting an EULA needs the permission to change orders." in html
        ) is not can_change


@pytest.mark.parametrize("role", ["helpdesk_client", "ums_admin_client"])
@pytest.mark.parametrize(
    "post_url, data",
    [
        (url("order_accept_eula", "ORD-BIG"), {}),
        (url("pack_action", "WE-00000", "comment"), {"comment": "changed"}),
        (url("pack_action", "WE-00000", "split"), {"mode": "count", "count": "1"}),
        (url("pack_action", "WE-00000", "remove-hardware"), {"unit_ids": [HW], "accept_terms": "on"}),
        (url("pack_action", "WE-00001", "merge"), {"packs": ["WE-00002"]}),
        (url("pack_action", "EMP-00000", "accept-eula"), {}),
    ],
)
def test_read_only_roles_get_403_and_nothing_changes(request, small_world, role, post_url, data):
    client = request.getfixturevalue(role)
    before = (
        list(ProductPack.objects.order_by("pk").values()),
        list(LicenseSlot.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        LicensePortalAction.objects.count(),
    )
    response = client.post(post_url, data)
    assert response.status_code == 403
    assert "needs the permission to change" in response.content.decode()
    after = (
        list(ProductPack.objects.order_by("pk").values()),
        list(LicenseSlot.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        LicensePortalAction.objects.count(),
    )
    assert after == before


@pytest.mark.parametrize(
    "post_url", [url("order_accept_eula", "ORD-BIG"), url("pack_action", "WE-00000", "comment")]
)
def test_anonymous_post_is_sent_to_login_and_changes_nothing(client, small_world, post_url):
    response = client.post(post_url, {"comment": "x"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Order.objects.get(number="ORD-BIG").eula_accepted_at is None
    assert LicensePortalAction.objects.count() == 10


def test_ilp_administrator_changes_and_the_change_is_an_action_naming_the_user(ilp_admin_client, small_world):
    response = ilp_admin_client.post(url("pack_action", "WE-00001", "comment"), {"comment": "Hamburg"})
    assert response.status_code == 302
    assert ProductPack.objects.get(pack_id="WE-00001").comment == "Hamburg"
    action = LicensePortalAction.objects.get(pack_id="WE-00001")
    assert (action.actor, action.action, action.detail) == ("ilp-admin", "COMMENT", "Comment '' -> 'Hamburg'")


# --- queries do not grow with rows -----------------------------------------------------------------------
def measure(client, page_url, fmt=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(
            page_url + ("&" if "?" in page_url else "?") + f"export={fmt}" if fmt else page_url
        )
        body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sorted({s for s in sql if sql.count(s) > 1}) == []  # nothing asked twice
    return len(sql), response, body


# rows the page lists (first page: 50 at most) with 10 and with 500 rows of its kind
SHOWN = {
    "dashboard": (20, 50),
    "packs": (20, 50),
    "pack": (11, 50),
    "orders": (11, 50),
    "order": (10, 50),
    "keys": (10, 50),
    "search": (20, 50),
    "activity": (10, 50),
}


def rows_of(response, page):
    context = response.context
    table = (
        context["licenses"] if page == "pack" else context["packs"] if page == "order" else context["table"]
    )
    return len(table.page.object_list)


@pytest.mark.parametrize("page", PAGES)
def test_page_queries_do_not_grow_from_10_to_500_rows(helpdesk_client, db, page):
    world(0, 10)
    small, response, _ = measure(helpdesk_client, PAGES[page])
    shown_small = rows_of(response, page)
    world(10, 490)
    large, response, _ = measure(helpdesk_client, PAGES[page])
    assert (shown_small, rows_of(response, page)) == SHOWN[page]
    assert small == large, f"{page}: {small} queries for 10 rows, {large} for 500"
    assert large <= 14


EXPORTED = {
    "dashboard": (20, 1000),
    "packs": (20, 1000),
    "pack": (11, 501),
    "orders": (11, 501),
    "order": (10, 500),
    "keys": (10, 500),
    "search": (20, 1000),
    "activity": (10, 500),
}


@pytest.mark.parametrize("page", PAGES)
def test_csv_export_queries_do_not_grow_from_10_to_500_rows(helpdesk_client, db, page):
    def lines(body):
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]

    world(0, 10)
    small, response, body = measure(helpdesk_client, PAGES[page], "csv")
    assert response.streaming
    n_small = len(lines(body))
    world(10, 490)
    large, _, body = measure(helpdesk_client, PAGES[page], "csv")
    assert (n_small, len(lines(body))) == EXPORTED[page]
    assert small == large, f"{page} export: {small} queries for 10 rows, {large} for 500"


def test_activity_json_export_has_exactly_the_filtered_rows(helpdesk_client, small_world):
    response = helpdesk_client.get(url("activity"), {"q": "WE-00003", "export": "json"})
    rows = json.loads(response.content)
    assert [(r["Pack ID"], r["Other packs"], r["Order"], r["Detail"]) for r in rows] == [
        ("WE-00000", "WE-00003", "ORD-00003", "=comment 3")
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_cell_starting_like_a_formula_is_exported_as_text(helpdesk_client, small_world, fmt):
    from tests.test_exports import column, read

    export = read(helpdesk_client.get(url("activity"), {"q": "WE-00003", "export": fmt}), fmt)
    assert column(export, fmt, "Detail") == ["'=comment 3" if fmt == "csv" else "=comment 3"]
