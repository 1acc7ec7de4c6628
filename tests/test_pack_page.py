"""The Product Packs list (/ilp/packs/) and the pack page (/ilp/packs/<pack_id>/) with its actions.

Who may see and change, that the pages show the right values for data made through the services, that
every action ends in a message or a form error naming field and value (never a 500), and that the
number of queries does not grow with the rows."""

import datetime
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ald_portal import clock
from licensing.models import (
    LicenseSlot,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    SubscriptionKey,
    service_for,
)
from licensing.services import merge_packs, request_licenses, split_pack
from tests import factories as f
from tests.conftest import DEMO_NOW

PACKS = reverse("licensing:pack_list")
DASHBOARD = reverse("licensing:dashboard")
UNITS = [f.mac_for(n) for n in range(1, 300)]


def page(pack_id):
    return reverse("licensing:pack_detail", args=[pack_id])


def action(pack_id, name):
    return reverse("licensing:pack_action", args=[pack_id, name])


# --- reading pages -------------------------------------------------------------------------------------
class _Tables(HTMLParser):
    """Every <table> of a page: header texts, body rows as cell texts, and the links in each cell."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._row, self._cell = [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = {"header": [], "rows": []}
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = {"cells": [], "kinds": [], "links": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._row["cells"].append(self._cell)
            self._row["kinds"].append(tag)
            self._row["links"].append(None)
        elif tag == "a" and self._cell is not None:
            self._row["links"][-1] = attrs.get("href")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tr" and self._row is not None:
            texts = [" ".join("".join(c).split()) for c in self._row["cells"]]
            if all(k == "th" for k in self._row["kinds"]):
                self._table["header"] = texts
            else:
                self._table["rows"].append((texts, self._row["links"]))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows(response, first_header):
    """The table whose first column is ``first_header`` as [{header: text}], with "_links"."""
    parser = _Tables()
    parser.feed(response.content.decode())
    for t in parser.tables:
        if t["header"] and t["header"][0] == first_header:
            out = []
            for texts, links in t["rows"]:
                if len(texts) == 1:  # the "no rows" line
                    continue
                row = dict(zip(t["header"], texts, strict=True))
                row["_links"] = dict(zip(t["header"], links, strict=True))
                out.append(row)
            return out
    raise AssertionError(f"no table starting with column {first_header!r} on the page")


def details(response):
    """The pack page's details: {row header: value}."""
    parser = _Tables()
    parser.feed(response.content.decode())
    (table,) = [t for t in parser.tables if not t["header"]]
    return {texts[0]: texts[1] for texts, _ in table["rows"]}


def alerts(response):
    """The form errors on a page, as (field or "", text)."""

    class P(HTMLParser):
        found, _open = [], None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "p" and attrs.get("role") == "alert":
                self._open = [attrs.get("data-field", ""), ""]

        def handle_data(self, data):
            if self._open is not None:
                self._open[1] += data

        def handle_endtag(self, tag):
            if tag == "p" and self._open is not None:
                self.found.append(tuple(self._open))
                self._open = None

    p = P()
    p.found = []
    p.feed(response.content.decode())
    return p.found


def flash(response):
    return [str(m) for m in response.context["messages"]]


def snapshot():
    return (
        list(ProductPack.objects.order_by("pk").values()),
        list(LicenseSlot.objects.order_by("pk").values()),
        list(PackSizeChange.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
    )


def bind(pack_id, units):
    granted = request_licenses(pack_id, units, ums_fingerprint=f.ums().fingerprint).granted
    assert len(granted) == len(units)


# --- users and data ----------------------------------------------------------------------------------
@pytest.fixture
def reader(django_user_model):
    """Logged in, no permissions: reads every page, changes nothing."""
    return django_user_model.objects.create_user("reader")  # force_login: no password to hash


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


@pytest.fixture
def pack_admin_client(client, django_user_model):
    """Not a superuser: holds exactly the permission the pack actions need."""
    user = django_user_model.objects.create_user("packadmin")
    user.user_permissions.add(Permission.objects.get(codename="change_productpack"))
    client.force_login(user)
    return client


@pytest.fixture
def packs(db):
    """WE-AAAAA 10 (3 bound) and WE-BBBBB 5 (2 bound) under one subscription key; EMP-CCCCC 4 of an
    order whose EULA is pending; an expired, a future, an archived and a merged pack."""
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-0001-AAAA")
    f.pack("WE-AAAAA", total=10, subscription_key=key, comment="Berlin")
    f.pack("WE-BBBBB", total=5, subscription_key=key)
    f.pack("EMP-CCCCC", product_type="EMP", total=4, eula=False)
    f.pack("WE-EXPRD", total=2, expiry=datetime.date(2026, 11, 30))
    f.pack("WE-FUTUR", total=2, start=datetime.date(2027, 1, 1))
    f.pack("WE-ARCHV", total=2, status=PackStatus.ARCHIVED)
    f.pack("UDP-MRGDA", product_type="UDP", total=3, expiry=None)
    f.pack("UDP-MRGDB", product_type="UDP", total=3, expiry=None)
    bind("WE-AAAAA", UNITS[:3])
    bind("WE-BBBBB", UNITS[3:5])
    merge_packs("UDP-MRGDA", ["UDP-MRGDB"], actor="earlier")
    return key


PACK_IDS = ["WE-AAAAA", "WE-BBBBB", "EMP-CCCCC", "WE-EXPRD", "WE-FUTUR", "WE-ARCHV", "UDP-MRGDA", "UDP-MRGDB"]

ACTIONS = {
    "split": {"mode": "count", "count": "2"},
    "merge": {"packs": ["WE-BBBBB"]},
    "remove-hardware": {"unit_ids": [UNITS[0]], "accept_terms": "on"},
    "comment": {"comment": "changed"},
    "accept-eula": {},
}


# --- who may see and change ------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("url", [PACKS, page("WE-AAAAA")])
def test_anonymous_user_is_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_post_is_sent_to_login_and_changes_nothing(client, packs, name):
    before = snapshot()
    response = client.post(action("WE-AAAAA", name), ACTIONS[name])
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert snapshot() == before


def test_read_only_user_reads_the_list_and_the_pack_page(reader_client, packs):
    assert rows(reader_client.get(PACKS), "Pack ID")
    response = reader_client.get(page("WE-AAAAA"))
    assert response.status_code == 200
    assert details(response)["Pack ID"] == "WE-AAAAA"
    html = response.content.decode()
    assert "Read-only: changing Product Packs needs the permission to change Product Packs." in html
    assert html.count('<fieldset class="plain" disabled>') == 4  # remove hardware, split, merge, comment
    assert (
        'name="unit_ids" value="00E0C5000001" form="remove-hardware" aria-label="Remove 00E0C5000001" disabled'
        in html
    )


@pytest.mark.parametrize("name", ACTIONS)
def test_read_only_user_gets_403_on_every_action_and_nothing_changes(reader_client, packs, name):
    pack_id = "EMP-CCCCC" if name == "accept-eula" else "WE-AAAAA"
    before = snapshot()
    response = reader_client.post(action(pack_id, name), ACTIONS[name])
    assert response.status_code == 403
    assert "Changing Product Packs needs the permission to change Product Packs." in response.content.decode()
    assert snapshot() == before


def test_the_pack_page_offers_forms_to_who_may_change(pack_admin_client, packs):
    html = pack_admin_client.get(page("WE-AAAAA")).content.decode()
    assert "disabled" not in html and "Read-only" not in html
    for name in ("remove-hardware", "split", "merge", "comment"):
        assert f'action="{action("WE-AAAAA", name)}"' in html


@pytest.mark.django_db
def test_unknown_pack_and_unknown_action_are_404_and_get_on_an_action_is_405(admin_client, packs):
    assert admin_client.get(page("WE-NOPE0")).status_code == 404
    assert admin_client.get(page("WE-AAAAA\x00")).status_code == 404
    assert admin_client.post(action("WE-NOPE0", "comment"), {"comment": "x"}).status_code == 404
    assert admin_client.post(action("WE-AAAAA", "delete"), {}).status_code == 404
    assert admin_client.get(action("WE-AAAAA", "split")).status_code == 405


def test_nav_links_to_product_packs_and_the_dashboard_links_pack_ids(reader_client, packs):
    response = reader_client.get(DASHBOARD)
    assert f'<a href="{PACKS}">Product Packs</a>' in response.content.decode()
    by_id = {r["Pack ID"]: r["_links"]["Pack ID"] for r in rows(response, "Pack ID")}
    assert by_id["WE-AAAAA"] == page("WE-AAAAA")
    assert by_id["EMP-CCCCC"] == page("EMP-CCCCC")


# --- the list --------------------------------------------------------------------------------------------
def pack_ids(response):
    return [r["Pack ID"] for r in rows(response, "Pack ID")]


def test_list_shows_packs_in_use_with_counts_and_links(reader_client, packs):
    response = reader_client.get(PACKS)
    assert pack_ids(response) == ["EMP-CCCCC", "UDP-MRGDA", "WE-AAAAA", "WE-BBBBB", "WE-EXPRD", "WE-FUTUR"]
    assert "6 pack(s)" in response.content.decode()
    by_id = {r["Pack ID"]: r for r in rows(response, "Pack ID")}
    we = by_id["WE-AAAAA"]
    assert [we[c] for c in ("Total", "Used", "Free", "Consumption", "Subscription key", "Comment")] == [
        "10",
        "3",
        "7",
        "30%",
        "SK-0001-AAAA",
        "Berlin",
    ]
    assert we["_links"]["Pack ID"] == page("WE-AAAAA")
    assert (by_id["UDP-MRGDA"]["Total"], by_id["UDP-MRGDA"]["Expiry"]) == ("6", "perpetual")
    assert [by_id[p]["Status"] for p in ("WE-EXPRD", "WE-FUTUR")] == ["Expired", "Not yet activated"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"product_type": "EMP"}, ["EMP-CCCCC"]),
        ({"product_type": "UDP"}, ["UDP-MRGDA"]),
        ({"status": "ACTIVE"}, ["EMP-CCCCC", "UDP-MRGDA", "WE-AAAAA", "WE-BBBBB"]),
        ({"status": "EXPIRED"}, ["WE-EXPRD"]),
        ({"status": "NOT_YET_ACTIVATED"}, ["WE-FUTUR"]),
        ({"status": "ARCHIVED"}, ["WE-ARCHV"]),
        ({"status": "MERGED"}, ["UDP-MRGDB"]),
        ({"status": "ACTIVE", "product_type": "WE"}, ["WE-AAAAA", "WE-BBBBB"]),
        ({"q": "bbbbb"}, ["WE-BBBBB"]),
        ({"q": "SK-0001"}, ["WE-AAAAA", "WE-BBBBB"]),
        ({"q": " mrgd "}, ["UDP-MRGDA"]),
        ({"expires": "expired"}, ["WE-EXPRD"]),
        ({"expires": "30"}, []),
        ({"expires": "90"}, []),
    ],
)
def test_list_filters(reader_client, packs, query, expected):
    assert pack_ids(reader_client.get(PACKS, query)) == expected


def test_list_expiry_windows(reader_client, db):
    for days in (0, 30, 31, 90, 91):
        f.pack(f"WE-D{days:04d}", total=1, expiry=clock.today() + datetime.timedelta(days=days))
    assert pack_ids(reader_client.get(PACKS, {"expires": "30"})) == ["WE-D0000", "WE-D0030"]
    assert pack_ids(reader_client.get(PACKS, {"expires": "90"})) == [
        "WE-D0000",
        "WE-D0030",
        "WE-D0031",
        "WE-D0090",
    ]


def test_a_bad_filter_value_is_a_form_error_not_a_500(reader_client, packs):
    response = reader_client.get(PACKS, {"status": "GONE"})
    assert response.status_code == 200
    assert "Select a valid choice. GONE is not one of the available choices." in response.content.decode()


@pytest.mark.parametrize("sort", ["total", "-used", "product_name", "expiry_date", "pack_id"])
def test_list_pages_neither_repeat_nor_skip_a_pack(reader_client, db, sort):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-SAME-0001")
    grow_packs(0, 120, key)  # the same everything: only the tie-break orders them
    seen = []
    for n in (1, 2, 3):
        seen += pack_ids(reader_client.get(PACKS, {"sort": sort, "page": n}))
    assert len(seen) == 120 and sorted(seen) == [f"WE-{i:05d}" for i in range(120)]


# --- the pack page -------------------------------------------------------------------------------------
def test_pack_page_shows_details_licenses_and_size_history(reader_client, packs):
    clock.freeze(DEMO_NOW + datetime.timedelta(hours=2))
    new = split_pack("WE-AAAAA", count=4, actor="alice")
    response = reader_client.get(page("WE-AAAAA"))
    d = details(response)
    assert {k: d[k] for k in ("Licenses", "Used", "Free", "Consumption", "Status", "Subscription key")} == {
        "Licenses": "6",
        "Used": "3",
        "Free": "3",
        "Consumption": "50%",
        "Status": "Active",
        "Subscription key": "SK-0001-AAAA",
    }
    assert (d["Expiry date"], d["Comment"], d["UMS ID"]) == ("2027-12-03", "Berlin", f.ums().name)
    assert d["EULA"].startswith("Accepted by tester at ")
    licenses = rows(response, "Unit ID")
    assert [(r["Unit ID"], r["Bound at"]) for r in licenses] == [(u, "2026-12-03 12:00") for u in UNITS[:3]]
    history = rows(response, "At")
    assert [
        (r["At"], r["Old total"], r["New total"], r["Change"], r["Reason"], r["Actor"]) for r in history
    ] == [
        ("2026-12-03 14:00", "10", "6", "-4", "Split", "alice"),
        ("2026-12-03 12:00", "0", "10", "+10", "Created", "—"),
    ]
    assert history[0]["Detail"] == f"4 licenses split off into {new.pack_id}"


def test_merged_pack_page_points_to_its_target_and_offers_no_split_or_merge(reader_client, packs):
    response = reader_client.get(page("UDP-MRGDB"))
    html = response.content.decode()
    assert f'Merged into <a href="{page("UDP-MRGDA")}">UDP-MRGDA</a>' in html
    assert "Split product pack" not in html and "Merge packs into" not in html
    assert (details(response)["Status"], details(response)["Licenses"]) == ("Merged", "0")
    assert rows(response, "At")[0]["Detail"] == "merged into UDP-MRGDA"


# --- actions: success ------------------------------------------------------------------------------------
def test_split_from_the_page(pack_admin_client, packs):
    response = pack_admin_client.post(action("WE-AAAAA", "split"), {"mode": "count", "count": "4"})
    assert response.status_code == 302 and response["Location"] == page("WE-AAAAA")
    new = ProductPack.objects.exclude(pack_id__in=PACK_IDS).get()
    assert (new.total_licenses, new.used, new.pack_id[:3]) == (4, 0, "WE-")
    followed = pack_admin_client.get(page("WE-AAAAA"))
    assert flash(followed) == [f"Split 4 licenses off WE-AAAAA into the new pack {new.pack_id}."]
    assert details(followed)["Licenses"] == "6"
    assert PackSizeChange.objects.filter(pack__pack_id="WE-AAAAA").latest("pk").actor == "packadmin"


def test_split_only_the_empty_slots_from_the_page(pack_admin_client, packs):
    response = pack_admin_client.post(
        action("WE-BBBBB", "split"), {"mode": "empty", "count": ""}, follow=True
    )
    new = ProductPack.objects.exclude(pack_id__in=PACK_IDS).get()
    assert flash(response) == [f"Split 3 licenses off WE-BBBBB into the new pack {new.pack_id}."]
    assert (ProductPack.objects.get(pack_id="WE-BBBBB").total_licenses, new.total_licenses) == (2, 3)


def test_merge_from_the_page(pack_admin_client, packs):
    before = pack_admin_client.get(page("WE-AAAAA")).content.decode()
    assert 'name="packs" value="WE-BBBBB"' in before and 'value="WE-EXPRD"' not in before
    response = pack_admin_client.post(action("WE-AAAAA", "merge"), {"packs": ["WE-BBBBB"]}, follow=True)
    assert flash(response) == ["Merged WE-BBBBB into WE-AAAAA: now 15 licenses, 5 used."]
    assert [r["Unit ID"] for r in rows(response, "Unit ID")] == UNITS[:5]
    assert ProductPack.objects.get(pack_id="WE-BBBBB").status == PackStatus.MERGED
    assert "No other pack can be merged into this one." in response.content.decode()


def test_remove_hardware_from_the_page(pack_admin_client, packs):
    data = {"unit_ids": [UNITS[0], UNITS[2]], "accept_terms": "on"}
    response = pack_admin_client.post(action("WE-AAAAA", "remove-hardware"), data, follow=True)
    assert flash(response) == [f"Removed hardware {UNITS[0]}, {UNITS[2]} from WE-AAAAA: 2 license(s) freed."]
    assert [r["Unit ID"] for r in rows(response, "Unit ID")] == [UNITS[1]]
    assert details(response)["Used"] == "1"
    assert set(
        LicenseSlot.objects.filter(released_at__isnull=False).values_list("released_by", flat=True)
    ) == {"packadmin"}
    again = pack_admin_client.post(action("WE-AAAAA", "remove-hardware"), data, follow=True)
    assert flash(again) == [f"{UNITS[0]}, {UNITS[2]} held no license in WE-AAAAA (already removed)."]
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


def test_comment_from_the_page(pack_admin_client, packs):
    response = pack_admin_client.post(action("WE-AAAAA", "comment"), {"comment": " Hamburg "}, follow=True)
    assert flash(response) == ["Comment of WE-AAAAA saved."]
    assert details(response)["Comment"] == "Hamburg"
    again = pack_admin_client.post(action("WE-AAAAA", "comment"), {"comment": "Hamburg"}, follow=True)
    assert flash(again) == ["No change."]


def test_accept_eula_from_the_page_covers_the_order(pack_admin_client, packs):
    emp = ProductPack.objects.get(pack_id="EMP-CCCCC")
    f.pack("WE-SAMEO", total=2, order=emp.order)
    assert "Accept EULA" in pack_admin_client.get(page("EMP-CCCCC")).content.decode()
    response = pack_admin_client.post(action("EMP-CCCCC", "accept-eula"), {}, follow=True)
    assert flash(response) == [
        f"EULA of order {emp.order.number} accepted by packadmin at 2026-12-03 12:00: it covers every pack of "
        "the order."
    ]
    assert details(response)["EULA"] == "Accepted by packadmin at 2026-12-03 12:00"
    assert "Accept EULA" not in response.content.decode()
    assert (
        details(pack_admin_client.get(page("WE-SAMEO")))["EULA"]
        == "Accepted by packadmin at 2026-12-03 12:00"
    )
    again = pack_admin_client.post(action("WE-SAMEO", "accept-eula"), {}, follow=True)
    assert flash(again) == [
        f"The EULA of order {emp.order.number} was already accepted by packadmin at 2026-12-03 12:00."
    ]


# --- actions: refusals are form errors naming field and value ----------------------------------------
REFUSALS = [
    (
        "WE-AAAAA",
        "split",
        {"mode": "count", "count": "8"},
        "count",
        "Number of slots 8 is more than the 7 free licenses of WE-AAAAA; only free licenses move in a split "
        "(bound ones stay with their devices).",
    ),
    (
        "WE-AAAAA",
        "split",
        {"mode": "count", "count": "abc"},
        "count",
        "Number of slots must be a whole number, not 'abc'.",
    ),
    (
        "WE-AAAAA",
        "split",
        {"mode": "count", "count": "\u0661\u0662"},
        "count",
        "Number of slots must be a whole number, not '\u0661\u0662'.",
    ),
    (
        "WE-AAAAA",
        "split",
        {"mode": "count", "count": "1_0"},
        "count",
        "Number of slots must be a whole number, not '1_0'.",
    ),
    (
        "WE-AAAAA",
        "split",
        {"mode": "count", "count": "0"},
        "count",
        "Number of slots must be a whole number of at least 1, not 0.",
    ),
    ("WE-AAAAA", "split", {"mode": "count"}, "count", "Enter the number of slots to split off."),
    ("WE-AAAAA", "split", {"mode": "half"}, "mode", "Split off 'half' is not one of the choices."),
    (
        "WE-ARCHV",
        "split",
        {"mode": "count", "count": "1"},
        "",
        "Pack WE-ARCHV is archived.",
    ),
    (
        "WE-AAAAA",
        "merge",
        {"packs": ["WE-EXPRD"]},
        "packs",
        "Pack WE-EXPRD differs in expiry date: 2026-11-30, but WE-AAAAA has 2027-12-03.",
    ),
    ("WE-AAAAA", "merge", {}, "packs", "Choose at least one pack to merge into WE-AAAAA."),
    ("WE-AAAAA", "merge", {"packs": ["WE-ZZZZZ"]}, "packs", "Pack 'WE-ZZZZZ' does not exist."),
    (
        "WE-AAAAA",
        "merge",
        {"packs": ["UDP-MRGDB"]},
        "packs",
        "Pack UDP-MRGDB was merged into UDP-MRGDA and is not used any more.",
    ),
    (
        "WE-AAAAA",
        "remove-hardware",
        {"unit_ids": [UNITS[0]]},
        "accept_terms",
        "Accept the terms and conditions to remove hardware from WE-AAAAA.",
    ),
    (
        "WE-AAAAA",
        "remove-hardware",
        {"accept_terms": "on"},
        "unit_ids",
        "Tick at least one unit ID to remove from WE-AAAAA.",
    ),
    (
        "WE-AAAAA",
        "remove-hardware",
        {"unit_ids": ["not-a-unit"], "accept_terms": "on"},
        "unit_ids",
        "Unit ID 'not-a-unit' is not 12 or 18 upper-case hexadecimal digits.",
    ),
    (
        "WE-AAAAA",
        "comment",
        {"comment": "x" * 501},
        "comment",
        "Comment is 501 characters long; at most 500 are allowed.",
    ),
    (
        "WE-NOORD",
        "accept-eula",
        {},
        "",
        "Pack WE-NOORD belongs to no order: there is no EULA to accept.",
    ),
]


@pytest.mark.parametrize(
    "pack_id, name, data, field, message", REFUSALS, ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSALS)]
)
def test_refusals_are_form_errors_naming_field_and_value_and_change_nothing(
    pack_admin_client, packs, pack_id, name, data, field, message
):
    f.pack("WE-NOORD", total=2, order=None)
    before = snapshot()
    response = pack_admin_client.post(action(pack_id, name), data)
    assert response.status_code == 200
    assert alerts(response) == [(field, message)]
    assert snapshot() == before
    assert details(response)["Pack ID"] == pack_id  # the whole page is there around the error


def test_ticked_unit_ids_stay_ticked_next_to_the_error(pack_admin_client, packs):
    response = pack_admin_client.post(action("WE-AAAAA", "remove-hardware"), {"unit_ids": [UNITS[1]]})
    html = response.content.decode()
    assert f'value="{UNITS[1]}" form="remove-hardware" aria-label="Remove {UNITS[1]}" checked>' in html
    assert f'value="{UNITS[0]}" form="remove-hardware" aria-label="Remove {UNITS[0]}">' in html


def test_a_superuser_may_act_too(admin_client, packs):
    response = admin_client.post(action("WE-AAAAA", "comment"), {"comment": "by root"})
    assert response.status_code == 302
    assert ProductPack.objects.get(pack_id="WE-AAAAA").comment == "by root"


# --- queries do not grow with rows ----------------------------------------------------------------------
def grow_packs(first, count, key):
    company, ums = f.company(), f.ums()
    today = clock.today()
    ProductPack.objects.bulk_create(
        [
            ProductPack(
                pack_id=f"WE-{i:05d}",
                company=company,
                product_name="IGEL WE",  # as the factory's packs: all are merge candidates
                product_type="WE",
                service=service_for("WE", f"WE-{i:05d}"),
                total_licenses=10,
                start_date=today - datetime.timedelta(days=1),
                expiry_date=today + datetime.timedelta(days=365),
                subscription_key=key,
                assigned_ums=ums,
            )
            for i in range(first, first + count)
        ]
    )


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sorted({s for s in sql if sql.count(s) > 1}) == []  # nothing asked twice
    return len(sql), response


@pytest.mark.django_db
def test_queries_of_the_list_do_not_grow_with_packs(reader_client):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-GROW-0001")
    grow_packs(0, 10, key)
    small, response = count_queries(reader_client, PACKS)
    assert len(rows(response, "Pack ID")) == 10
    grow_packs(10, 190, key)
    large, response = count_queries(reader_client, PACKS)
    assert len(rows(response, "Pack ID")) == 50 and "200 pack(s)" in response.content.decode()
    assert small == large, f"{small} queries for 10 packs, {large} for 200"
    assert large <= 6  # session, user, count, rows


@pytest.mark.django_db
def test_queries_of_the_pack_page_do_not_grow_with_slots_history_or_merge_candidates(reader_client):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-GROW-0001")
    f.pack("WE-AAAAA", total=400, subscription_key=key)

    def grow(start, count):
        bind("WE-AAAAA", UNITS[start : start + count])
        PackSizeChange.objects.bulk_create(
            [
                PackSizeChange(
                    pack_id=ProductPack.objects.get(pack_id="WE-AAAAA").pk,
                    old_total=400,
                    new_total=400,
                    reason="IMPORT",
                )
            ]
            * count
        )
        grow_packs(start, count, key)  # merge candidates

    grow(0, 10)
    small, response = count_queries(reader_client, page("WE-AAAAA"))
    assert (len(rows(response, "Unit ID")), len(rows(response, "At"))) == (10, 11)
    grow(10, 190)
    large, response = count_queries(reader_client, page("WE-AAAAA"))
    assert (len(rows(response, "Unit ID")), len(rows(response, "At"))) == (50, 25)
    assert response.content.decode().count('name="packs"') == 200
    assert small == large, f"{small} queries for 10 slots, {large} for 200"
    assert (
        large <= 12
    )  # session, user, permissions (2), pack, slot count + rows, history count + rows, candidates


ODD = ["page=abc", "page=0", "page=-1", "page=99999", "page=" + "9" * 40, "per_page=-5", "per_page=0"]
ODD += ["per_page=100000", "sort=nonsense", "sort=-remove", "history-page=abc", "history-per_page=0"]
ODD += ["status=GONE", "product_type=%00", "expires=7", "q=%00"]


@pytest.mark.parametrize("url", [PACKS, page("WE-AAAAA")])
@pytest.mark.parametrize("query", ODD)
def test_odd_parameters_give_a_page(reader_client, packs, url, query):
    response = reader_client.get(f"{url}?{query}")
    assert response.status_code == 200
