"""The License Portal's Product Pack operations (docs/DOMAIN.md 1.4, 2.8, 4.4): split, merge, remove
hardware, comment, accept EULA, and the pack size history they write. The race tests at the end run
on PostgreSQL only, where row locks are real."""

import datetime
import itertools
import re
import threading
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Sum

from ald_portal import clock
from licensing import services
from licensing.contract import LicenseErrorCode, LicenseServiceError
from licensing.importers import import_packs
from licensing.models import (
    PACK_ID_RE,
    Company,
    LicenseSlot,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    SubscriptionKey,
)
from licensing.services import (
    accept_eula,
    merge_candidates,
    merge_packs,
    release_license,
    remove_hardware,
    request_licenses,
    set_pack_comment,
    split_pack,
)
from tests import factories as f
from tests.conftest import DEMO_NOW

UNITS = [f.mac_for(n) for n in range(1, 400)]


def fp():
    return f.ums().fingerprint


def bind(pack_id, units):
    result = request_licenses(pack_id, units, ums_fingerprint=fp())
    assert [g.unit_id for g in result.granted] == list(units)


def counts(pack_id):
    p = ProductPack.objects.get(pack_id=pack_id)
    return p.total_licenses, p.used


def active_units(pack_id):
    return sorted(
        LicenseSlot.objects.filter(pack__pack_id=pack_id, released_at__isnull=True).values_list(
            "unit_id", flat=True
        )
    )


def history(pack_id):
    """(old_total, new_total, reason, actor, detail) of a pack, oldest first."""
    return list(
        PackSizeChange.objects.filter(pack__pack_id=pack_id)
        .order_by("at", "pk")
        .values_list("old_total", "new_total", "reason", "actor", "detail")
    )


def snapshot():
    return (
        list(ProductPack.objects.order_by("pk").values()),
        list(LicenseSlot.objects.order_by("pk").values()),
        list(PackSizeChange.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
    )


def refused(field, call, *args, **kwargs):
    """Run ``call``, expect a ValidationError on ``field`` and no change at all; return the message."""
    before = snapshot()
    with pytest.raises(ValidationError) as err:
        call(*args, **kwargs)
    assert list(err.value.message_dict) == [field]
    assert snapshot() == before
    (message,) = err.value.message_dict[field]
    return message


def assert_invariants():
    """Every pack: used == its active slots, used <= total; its size history chains from 0 to its total."""
    active = Counter(LicenseSlot.objects.filter(released_at__isnull=True).values_list("pack_id", flat=True))
    for pack in ProductPack.objects.all():
        assert pack.used == active.get(pack.pk, 0), pack.pack_id
        assert pack.used <= pack.total_licenses, pack.pack_id
        rows = list(pack.size_changes.order_by("at", "pk").values_list("old_total", "new_total"))
        assert rows[0][0] == 0 and rows[-1][1] == pack.total_licenses, (pack.pack_id, rows)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(rows)), (pack.pack_id, rows)


@pytest.fixture
def key(db):
    return SubscriptionKey.objects.create(company=f.company(), key="SK-0001-AAAA")


# --- split ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_split_a_number_of_slots_moves_only_free_licenses_into_a_new_pack(key):
    source = f.pack("WE-AAAAA", total=10, subscription_key=key, comment="Berlin office")
    bind("WE-AAAAA", UNITS[:3])

    new = split_pack("WE-AAAAA", count=4, actor="alice")

    assert counts("WE-AAAAA") == (6, 3)
    assert counts(new.pack_id) == (4, 0)
    assert re.fullmatch(r"WE-[A-Z0-9]{5}", new.pack_id) and PACK_ID_RE.match(new.pack_id)
    assert new.pack_id != "WE-AAAAA"
    same = ("company_id", "order_id", "subscription_key_id", "product_name", "product_type", "service")
    same += ("start_date", "expiry_date", "status", "assigned_ums_id")
    new.refresh_from_db()
    assert [getattr(new, a) for a in same] == [getattr(source, a) for a in same]
    assert new.comment == "" and new.merged_into is None
    assert active_units("WE-AAAAA") == UNITS[:3]  # bound licenses stay with their devices
    assert active_units(new.pack_id) == []
    assert ProductPack.objects.aggregate(t=Sum("total_licenses"), u=Sum("used")) == {"t": 10, "u": 3}
    assert history("WE-AAAAA") == [
        (0, 10, "CREATED", "", ""),
        (10, 6, "SPLIT", "alice", f"4 licenses split off into {new.pack_id}"),
    ]
    assert history(new.pack_id) == [(0, 4, "SPLIT", "alice", "split off WE-AAAAA")]
    assert_invariants()


@pytest.mark.django_db
def test_split_only_the_empty_slots_takes_all_free_licenses():
    f.pack("EMP-AAAAA", product_type="EMP", total=10)
    bind("EMP-AAAAA", UNITS[:3])

    new = split_pack("EMP-AAAAA", mode="empty", actor="alice")

    assert new.pack_id.startswith("EMP-")
    assert (counts("EMP-AAAAA"), counts(new.pack_id)) == ((3, 3), (7, 0))
    assert history(new.pack_id) == [(0, 7, "SPLIT", "alice", "split off EMP-AAAAA")]
    assert_invariants()


@pytest.mark.django_db
def test_the_new_pack_hands_out_licenses_under_the_same_order_and_ums_id():
    f.pack("WE-AAAAA", total=5)
    new = split_pack("WE-AAAAA", count=2, actor="alice")
    result = request_licenses(new.pack_id, UNITS[:3], ums_fingerprint=fp())
    assert [g.unit_id for g in result.granted] == UNITS[:2]
    assert result.denied == {UNITS[2]: LicenseErrorCode.NO_FREE_LICENSE}
    assert (result.pack.total, result.pack.used, result.pack.usable) == (2, 2, True)


@pytest.mark.django_db
def test_an_add_on_pack_splits_into_a_pack_of_the_same_service():
    f.pack("ADR-AAAAA", product_type="ADDON", total=4)
    new = split_pack("ADR-AAAAA", count=1, actor="alice")
    assert new.pack_id.startswith("ADR-")
    assert ProductPack.objects.get(pk=new.pk).service == "ADDON_ADR"


@pytest.mark.django_db
def test_splitting_more_than_the_free_licenses_is_refused_by_field_and_value():
    f.pack("WE-AAAAA", total=10)
    bind("WE-AAAAA", UNITS[:8])
    message = refused("count", split_pack, "WE-AAAAA", count=3, actor="alice")
    assert message == (
        "Number of slots 3 is more than the 2 free licenses of WE-AAAAA; only free licenses move in a "
        "split (bound ones stay with their devices)."
    )
    assert counts("WE-AAAAA") == (10, 8)
    assert ProductPack.objects.count() == 1


@pytest.mark.django_db
def test_a_pack_keeps_at_least_one_license_and_splits_until_one_remains():
    f.pack("WE-AAAAA", total=3)
    split_pack("WE-AAAAA", count=1, actor="alice")
    split_pack("WE-AAAAA", count=1, actor="alice")
    assert counts("WE-AAAAA") == (1, 0)
    message = refused("count", split_pack, "WE-AAAAA", count=1, actor="alice")
    assert message == (
        "Number of slots 1 would leave WE-AAAAA with 0 licenses; a pack keeps at least 1, so at most 0 "
        "can be split off."
    )
    assert ProductPack.objects.aggregate(t=Sum("total_licenses")) == {"t": 3}


@pytest.mark.django_db
def test_splitting_all_licenses_of_a_pack_is_refused():
    f.pack("WE-AAAAA", total=5)
    assert "at most 4 can be split off" in refused("count", split_pack, "WE-AAAAA", count=5, actor="a")
    assert refused("mode", split_pack, "WE-AAAAA", mode="empty", actor="a") == (
        "All 5 licenses of WE-AAAAA are empty: splitting them all off would leave it with none (a pack "
        "keeps at least 1). Split a number of slots instead (at most 4)."
    )


@pytest.mark.django_db
def test_splitting_the_empty_slots_of_a_full_pack_is_refused():
    f.pack("WE-AAAAA", total=2)
    bind("WE-AAAAA", UNITS[:2])
    assert refused("mode", split_pack, "WE-AAAAA", mode="empty", actor="a") == (
        "Pack WE-AAAAA has no empty slots: all 2 licenses are bound."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, field, shown",
    [
        ({"count": 0}, "count", "not 0."),
        ({"count": -2}, "count", "not -2."),
        ({"count": "3"}, "count", "not '3'."),
        ({"count": True}, "count", "not True."),
        ({"count": None}, "count", "not None."),
        ({"mode": "all", "count": 1}, "mode", "Split mode 'all' is not one of 'count', 'empty'."),
    ],
)
def test_bad_split_input_is_refused_naming_the_value(kwargs, field, shown):
    f.pack("WE-AAAAA", total=5)
    assert refused(field, split_pack, "WE-AAAAA", actor="a", **kwargs).endswith(shown)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [PackStatus.ARCHIVED, PackStatus.MERGED])
def test_retired_packs_do_not_split(status):
    f.pack("WE-AAAAA", total=5, status=status)
    assert refused("pack", split_pack, "WE-AAAAA", count=1, actor="a").startswith("Pack WE-AAAAA ")


@pytest.mark.django_db
def test_an_unknown_pack_does_not_split():
    assert refused("pack", split_pack, "WE-NOPE0", count=1, actor="a") == "Pack 'WE-NOPE0' does not exist."


@pytest.mark.django_db
def test_a_new_pack_id_already_taken_is_never_reused(monkeypatch):
    f.pack("WE-AAAAA", total=5)
    f.pack("WE-TAKEN", total=1)
    tries = iter(["WE-TAKEN", "WE-AAAAA", "WE-FRESH"])
    monkeypatch.setattr(services, "new_pack_id", lambda prefix: next(tries))
    assert split_pack("WE-AAAAA", count=2, actor="a").pack_id == "WE-FRESH"
    assert (counts("WE-TAKEN"), counts("WE-AAAAA"), counts("WE-FRESH")) == ((1, 0), (3, 0), (2, 0))


# --- merge ---------------------------------------------------------------------------------------------
def three_packs(key):
    for pack_id, total in (("WE-AAAAA", 10), ("WE-BBBBB", 5), ("WE-CCCCC", 3)):
        f.pack(pack_id, total=total, subscription_key=key)
    bind("WE-AAAAA", UNITS[0:4])
    bind("WE-BBBBB", UNITS[4:9])
    bind("WE-CCCCC", UNITS[9:10])


@pytest.mark.django_db
def test_merge_moves_active_slots_and_adds_up_the_totals(key):
    three_packs(key)
    release_license("WE-BBBBB", UNITS[4], actor="bob")  # released history stays with its pack

    target = merge_packs("WE-AAAAA", ["WE-BBBBB", "WE-CCCCC"], actor="alice")

    assert (target.total_licenses, target.used) == (18, 4 + 4 + 1)
    assert active_units("WE-AAAAA") == UNITS[0:4] + UNITS[5:10]
    for pack_id in ("WE-BBBBB", "WE-CCCCC"):
        merged = ProductPack.objects.get(pack_id=pack_id)
        assert (merged.status, merged.total_licenses, merged.used, merged.merged_into) == (
            "MERGED",
            0,
            0,
            target,
        )
    assert LicenseSlot.objects.get(unit_id=UNITS[4]).pack.pack_id == "WE-BBBBB"
    assert ProductPack.objects.aggregate(t=Sum("total_licenses"), u=Sum("used")) == {"t": 18, "u": 9}
    assert history("WE-AAAAA")[-1] == (
        10,
        18,
        "MERGE",
        "alice",
        "merged in: WE-BBBBB (5 licenses, 4 bound), WE-CCCCC (3 licenses, 1 bound)",
    )
    assert history("WE-BBBBB")[-1] == (5, 0, "MERGE", "alice", "merged into WE-AAAAA")
    assert history("WE-CCCCC")[-1] == (3, 0, "MERGE", "alice", "merged into WE-AAAAA")
    assert_invariants()


@pytest.mark.django_db
def test_a_merged_pack_is_refused_by_request_licenses_and_its_units_are_held_by_the_target(key):
    three_packs(key)
    merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="alice")
    with pytest.raises(LicenseServiceError) as err:
        request_licenses("WE-BBBBB", UNITS[20:21], ums_fingerprint=fp())
    assert (err.value.code, err.value.message) == (
        LicenseErrorCode.PACK_NOT_ACTIVE,
        "Pack WE-BBBBB is merged into WE-AAAAA.",
    )
    again = request_licenses("WE-AAAAA", UNITS[4:5], ums_fingerprint=fp())
    assert [(g.unit_id, g.already_held) for g in again.granted] == [(UNITS[4], True)]
    assert counts("WE-AAAAA") == (15, 9)


@pytest.mark.django_db
def test_releasing_from_a_merged_pack_frees_the_slot_where_it_went(key):
    three_packs(key)
    merge_packs("WE-BBBBB", ["WE-CCCCC"], actor="alice")
    merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="alice")  # CCCCC -> BBBBB -> AAAAA
    assert release_license("WE-CCCCC", UNITS[9]) is True  # as the UMS's "Delete Licenses" asks
    assert release_license("WE-CCCCC", UNITS[9]) is False
    assert counts("WE-AAAAA") == (18, 4 + 5 + 1 - 1)
    slot = LicenseSlot.objects.get(unit_id=UNITS[9])
    assert (slot.pack.pack_id, slot.released_by, slot.released_at) == ("WE-AAAAA", "UMS", DEMO_NOW)
    assert_invariants()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"product_type": "EMP"},
            "Pack WE-BBBBB differs in product type: EMP, but WE-AAAAA has WE.",
        ),
        (
            {"product_name": "IGEL WE (Teradici)"},
            "Pack WE-BBBBB differs in product: IGEL WE (Teradici), but WE-AAAAA has IGEL WE.",
        ),
        (
            {"expiry_date": datetime.date(2028, 1, 31)},
            "Pack WE-BBBBB differs in expiry date: 2028-01-31, but WE-AAAAA has 2027-12-03.",
        ),
        (
            {"expiry_date": None},
            "Pack WE-BBBBB differs in expiry date: perpetual, but WE-AAAAA has 2027-12-03.",
        ),
        (
            {"subscription_key": "other"},
            "Pack WE-BBBBB differs in subscription key: SK-0002-BBBB, but WE-AAAAA has SK-0001-AAAA.",
        ),
        (
            {"subscription_key": None},
            "Pack WE-BBBBB differs in subscription key: none, but WE-AAAAA has SK-0001-AAAA.",
        ),
        (
            {"company": "other"},
            "Pack WE-BBBBB differs in company: Other AG (GA-000002), but WE-AAAAA has Acme GmbH (GA-000001).",
        ),
    ],
)
def test_packs_that_differ_do_not_merge_and_the_error_names_the_field_and_values(key, overrides, message):
    f.pack("WE-AAAAA", total=10, subscription_key=key, product_name="IGEL WE")
    values = {"subscription_key": key, "product_name": "IGEL WE", **overrides}
    if values["subscription_key"] == "other":
        values["subscription_key"] = SubscriptionKey.objects.create(company=f.company(), key="SK-0002-BBBB")
    product_type = values.pop("product_type", "WE")
    expiry = values.pop("expiry_date", "default")
    other_company = values.pop("company", None)
    pack = f.pack("WE-BBBBB", product_type=product_type, total=5, expiry=expiry, **values)
    if other_company:
        pack.company = Company.objects.create(name="Other AG", global_account_id="GA-000002")
        pack.save()
    bind("WE-BBBBB", UNITS[:2])
    assert refused("packs", merge_packs, "WE-AAAAA", ["WE-BBBBB"], actor="alice") == message
    assert list(merge_candidates(ProductPack.objects.get(pack_id="WE-AAAAA"))) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sources, field, message",
    [
        ([], "packs", "Choose at least one pack to merge into WE-AAAAA."),
        (["WE-AAAAA"], "packs", "Pack WE-AAAAA cannot be merged into itself."),
        (["WE-BBBBB", "WE-NOPE0"], "packs", "Pack 'WE-NOPE0' does not exist."),
    ],
)
def test_merge_needs_other_existing_packs(key, sources, field, message):
    three_packs(key)
    assert refused(field, merge_packs, "WE-AAAAA", sources, actor="alice") == message


@pytest.mark.django_db
def test_merged_and_archived_packs_do_not_merge_again(key):
    three_packs(key)
    ProductPack.objects.filter(pack_id="WE-CCCCC").update(status=PackStatus.ARCHIVED)
    merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="alice")
    assert refused("packs", merge_packs, "WE-AAAAA", ["WE-BBBBB"], actor="alice") == (
        "Pack WE-BBBBB was merged into WE-AAAAA and is not used any more."
    )
    assert refused("pack", merge_packs, "WE-BBBBB", ["WE-AAAAA"], actor="alice") == (
        "Pack WE-BBBBB was merged into WE-AAAAA and is not used any more."
    )
    assert refused("packs", merge_packs, "WE-AAAAA", ["WE-CCCCC"], actor="alice") == (
        "Pack WE-CCCCC is archived."
    )
    assert [p.pack_id for p in merge_candidates(ProductPack.objects.get(pack_id="WE-AAAAA"))] == []


@pytest.mark.django_db
def test_merge_candidates_are_the_matching_packs_in_use(key):
    three_packs(key)
    f.pack("WE-DDDDD", total=1)  # no subscription key
    f.pack("EMP-EEEEE", product_type="EMP", total=1, subscription_key=key)
    target = ProductPack.objects.get(pack_id="WE-AAAAA")
    assert [p.pack_id for p in merge_candidates(target)] == ["WE-BBBBB", "WE-CCCCC"]


@pytest.mark.django_db
def test_packs_of_another_order_merge_only_with_every_eula_accepted(key):
    f.pack("WE-AAAAA", total=10, subscription_key=key)
    f.pack("WE-BBBBB", total=5, subscription_key=key, eula=False)
    order = ProductPack.objects.get(pack_id="WE-BBBBB").order.number
    assert refused("packs", merge_packs, "WE-AAAAA", ["WE-BBBBB"], actor="alice") == (
        f"The EULA of order {order} (pack WE-BBBBB) is not accepted; packs of different orders merge only "
        "when every order's EULA is accepted."
    )
    accept_eula("WE-BBBBB", actor="carol")
    assert merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="alice").total_licenses == 15


@pytest.mark.django_db
def test_packs_of_one_order_merge_before_its_eula_is_accepted(key):
    first = f.pack("WE-AAAAA", total=10, subscription_key=key, eula=False)
    f.pack("WE-BBBBB", total=5, subscription_key=key, order=first.order)
    assert merge_packs("WE-AAAAA", ["WE-BBBBB"], actor="alice").total_licenses == 15


@pytest.mark.django_db
def test_a_unit_id_with_a_license_in_two_of_the_packs_stops_the_merge(key):
    three_packs(key)
    bind("WE-CCCCC", UNITS[0:1])  # also holds one in WE-AAAAA
    assert refused("packs", merge_packs, "WE-AAAAA", ["WE-BBBBB", "WE-CCCCC"], actor="alice") == (
        f"Unit ID {UNITS[0]} holds a license in WE-AAAAA and WE-CCCCC; remove that hardware from one of "
        "them first."
    )


# --- remove hardware -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_remove_hardware_frees_the_slots_records_who_and_a_second_time_is_harmless():
    f.pack("WE-AAAAA", total=3)
    bind("WE-AAAAA", UNITS[:3])
    clock.freeze(DEMO_NOW + datetime.timedelta(hours=1))

    result = remove_hardware("WE-AAAAA", [UNITS[2], UNITS[0]], actor="alice", accept_terms=True)

    assert (result.pack_id, result.removed, result.not_held) == ("WE-AAAAA", [UNITS[0], UNITS[2]], [])
    assert counts("WE-AAAAA") == (3, 1)
    assert active_units("WE-AAAAA") == [UNITS[1]]
    released = LicenseSlot.objects.filter(released_at__isnull=False).order_by("unit_id")
    assert [(s.unit_id, s.released_by, s.released_at) for s in released] == [
        (UNITS[0], "alice", DEMO_NOW + datetime.timedelta(hours=1)),
        (UNITS[2], "alice", DEMO_NOW + datetime.timedelta(hours=1)),
    ]
    again = remove_hardware("WE-AAAAA", [UNITS[0], UNITS[1]], actor="bob", accept_terms=True)
    assert (again.removed, again.not_held) == ([UNITS[1]], [UNITS[0]])
    assert counts("WE-AAAAA") == (3, 0)
    assert LicenseSlot.objects.get(unit_id=UNITS[0]).released_by == "alice"
    # the freed slots go to other devices, and to the same one again
    bind("WE-AAAAA", [UNITS[0], UNITS[5], UNITS[6]])
    assert counts("WE-AAAAA") == (3, 3)
    assert history("WE-AAAAA") == [(0, 3, "CREATED", "", "")]  # freeing is no size change
    assert_invariants()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "units, accept, field, message",
    [
        (
            [UNITS[0]],
            False,
            "accept_terms",
            "Accept the terms and conditions to remove hardware from WE-AAAAA.",
        ),
        ([], True, "unit_ids", "Tick at least one unit ID to remove from WE-AAAAA."),
        (
            [UNITS[0], "00:e0:c5:00:00:01"],
            True,
            "unit_ids",
            "Unit ID '00:e0:c5:00:00:01' is not 12 or 18 upper-case hexadecimal digits.",
        ),
    ],
)
def test_remove_hardware_refuses_without_terms_or_unit_ids(units, accept, field, message):
    f.pack("WE-AAAAA", total=3)
    bind("WE-AAAAA", UNITS[:1])
    assert refused(field, remove_hardware, "WE-AAAAA", units, actor="alice", accept_terms=accept) == message


@pytest.mark.django_db
def test_remove_hardware_from_an_unknown_pack_is_refused():
    assert refused("pack", remove_hardware, "WE-NOPE0", UNITS[:1], actor="a", accept_terms=True) == (
        "Pack 'WE-NOPE0' does not exist."
    )


# --- comment -------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_comment_is_set_trimmed_and_shown_to_the_ums():
    f.pack("WE-AAAAA", total=3)
    assert set_pack_comment("WE-AAAAA", "  Berlin, 3rd floor \n", actor="alice") is True
    assert set_pack_comment("WE-AAAAA", "Berlin, 3rd floor", actor="alice") is False
    assert ProductPack.objects.get(pack_id="WE-AAAAA").comment == "Berlin, 3rd floor"
    assert [p.comment for p in services.packs_for_ums(fp())] == ["Berlin, 3rd floor"]
    assert set_pack_comment("WE-AAAAA", "x" * 500, actor="alice") is True
    assert set_pack_comment("WE-AAAAA", "", actor="alice") is True
    assert ProductPack.objects.get(pack_id="WE-AAAAA").comment == ""


@pytest.mark.django_db
def test_a_comment_over_500_characters_is_refused():
    f.pack("WE-AAAAA", total=3, comment="keep me")
    assert refused("comment", set_pack_comment, "WE-AAAAA", "x" * 501, actor="alice") == (
        "Comment is 501 characters long; at most 500 are allowed."
    )
    assert (
        refused("pack", set_pack_comment, "WE-NOPE0", "hi", actor="alice")
        == "Pack 'WE-NOPE0' does not exist."
    )


# --- accept EULA ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_accepting_the_eula_in_one_pack_covers_the_whole_order():
    first = f.pack("WE-AAAAA", total=3, eula=False)
    f.pack("EMP-BBBBB", product_type="EMP", total=3, order=first.order)
    f.pack("WE-CCCCC", total=3, eula=False)  # another order: stays pending
    for pack_id in ("WE-AAAAA", "EMP-BBBBB"):
        with pytest.raises(LicenseServiceError) as err:
            request_licenses(pack_id, UNITS[:1], ums_fingerprint=fp())
        assert err.value.code == LicenseErrorCode.EULA_NOT_ACCEPTED

    order, accepted_now = accept_eula("EMP-BBBBB", actor="carol")

    assert (accepted_now, order.eula_accepted_by, order.eula_accepted_at) == (True, "carol", DEMO_NOW)
    assert len(request_licenses("WE-AAAAA", UNITS[:1], ums_fingerprint=fp()).granted) == 1
    assert len(request_licenses("EMP-BBBBB", UNITS[:1], ums_fingerprint=fp()).granted) == 1
    assert {p.pack_id: p.usable for p in services.packs_for_ums(fp())} == {
        "WE-AAAAA": True,
        "EMP-BBBBB": True,
        "WE-CCCCC": False,
    }
    clock.freeze(DEMO_NOW + datetime.timedelta(days=1))
    order, accepted_now = accept_eula("WE-AAAAA", actor="dave")  # accepting again keeps the record
    assert (accepted_now, order.eula_accepted_by, order.eula_accepted_at) == (False, "carol", DEMO_NOW)
    assert Order.objects.get(pk=order.pk).eula_accepted_by == "carol"


@pytest.mark.django_db
def test_eula_needs_an_order_and_someone_who_accepts():
    f.pack("WE-AAAAA", total=3, order=None)
    f.pack("WE-BBBBB", total=3, eula=False)
    assert refused("pack", accept_eula, "WE-AAAAA", actor="carol") == (
        "Pack WE-AAAAA belongs to no order: there is no EULA to accept."
    )
    assert refused("actor", accept_eula, "WE-BBBBB", actor="  ") == "Say who accepts the EULA."
    assert refused("pack", accept_eula, "WE-NOPE0", actor="carol") == "Pack 'WE-NOPE0' does not exist."


# --- size history ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_size_history_explains_every_total_after_splits_and_merges(key):
    f.pack("WE-AAAAA", total=20, subscription_key=key)
    bind("WE-AAAAA", UNITS[:5])
    b = split_pack("WE-AAAAA", count=6, actor="alice")
    c = split_pack("WE-AAAAA", mode="empty", actor="bob")
    d = split_pack(c.pack_id, count=3, actor="bob")
    merge_packs(b.pack_id, [d.pack_id, c.pack_id], actor="carol")
    assert counts("WE-AAAAA") == (5, 5)
    assert counts(b.pack_id) == (6 + 9, 0)
    assert ProductPack.objects.aggregate(t=Sum("total_licenses"), u=Sum("used")) == {"t": 20, "u": 5}
    assert [r[:3] for r in history(c.pack_id)] == [(0, 9, "SPLIT"), (9, 6, "SPLIT"), (6, 0, "MERGE")]
    assert PackSizeChange.objects.count() == 1 + 2 + 2 + 2 + 3
    assert_invariants()


@pytest.mark.django_db
def test_an_import_that_changes_a_total_is_in_the_size_history(tmp_path):
    company = f.company()
    path = tmp_path / "packs.csv"
    header = (
        "pack_id,product,product_type,licenses,start_date,expiry_date,subscription_key,order_number,comment\n"
    )
    path.write_text(header + "WE-IMPRT,IGEL WE,WE,100,2026-01-01,2027-12-31,,,\n")
    import_packs(path, company)
    path.write_text(header + "WE-IMPRT,IGEL WE,WE,130,2026-01-01,2027-12-31,,,more bought\n")
    import_packs(path, company)
    import_packs(path, company)  # unchanged: no row
    assert history("WE-IMPRT") == [
        (0, 100, "IMPORT", "", "imported from packs.csv"),
        (100, 130, "IMPORT", "", "imported from packs.csv"),
    ]


# --- admin -------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_admin_edit_of_a_pack_keeps_counters_it_did_not_change(admin_client):
    from django.urls import reverse

    pack = f.pack("WE-AAAAA", total=5)
    url = reverse("admin:licensing_productpack_change", args=[pack.pk])
    form = admin_client.get(url).context["adminform"].form
    assert "total_licenses" not in form.fields  # sizes change by split, merge or import only
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data.update(
        {
            "comment": "edited in the admin",
            "created_at_0": pack.created_at.date().isoformat(),
            "created_at_1": "12:00:00",
            "start_date": pack.start_date.isoformat(),
            "expiry_date": pack.expiry_date.isoformat(),
        }
    )
    bind("WE-AAAAA", UNITS[:2])  # while the form is open
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    pack.refresh_from_db()
    assert (pack.comment, pack.total_licenses, pack.used) == ("edited in the admin", 5, 2)


# --- races on PostgreSQL -----------------------------------------------------------------------------
def race(plans):
    """Run each (callable, args) in its own thread with its own connection, all starting at once.
    Returns the refusals (ValidationError / LicenseServiceError); anything else fails the test."""
    barrier = threading.Barrier(len(plans))
    refusals, errors = [], []

    def work(target, args):
        try:
            barrier.wait(timeout=30)
            target(*args, refusals)
        except Exception as exc:  # reported below: a worker must not die silently
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=plan) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a worker hung"
    assert errors == []
    return refusals


def _splitter(pack_id, times, refusals):
    for _ in range(times):
        try:
            split_pack(pack_id, count=5, actor="splitter")
        except ValidationError as exc:
            refusals.append(exc)


def _remover(pack_id, units, refusals):
    for unit in units:
        remove_hardware(pack_id, [unit], actor="remover", accept_terms=True)


def _requester(pack_id, fingerprint, units, refusals):
    for i in range(0, len(units), 7):
        request_licenses(pack_id, units[i : i + 7], ums_fingerprint=fingerprint)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_splits_removals_and_requests_race_on_one_pack(postgres):
    assert connection.vendor == "postgresql"
    f.pack("WE-RACE1", total=200)
    fingerprint = fp()
    bind("WE-RACE1", UNITS[:80])
    removed = UNITS[:60]  # two removers each for these: every unit removed twice, harmlessly
    plans = [(_splitter, ("WE-RACE1", 6)) for _ in range(3)]
    plans += [(_remover, ("WE-RACE1", removed[i::3])) for i in range(3)]
    plans += [(_remover, ("WE-RACE1", removed[i::3][::-1])) for i in range(3)]
    plans += [(_requester, ("WE-RACE1", fingerprint, UNITS[100 + 50 * i : 150 + 50 * i])) for i in range(3)]

    refusals = race(plans)

    packs = list(ProductPack.objects.all())
    source = next(p for p in packs if p.pack_id == "WE-RACE1")
    split_off = [p for p in packs if p.pack_id != "WE-RACE1"]
    assert len(split_off) + len(refusals) == 18  # every split either happened or was refused by name
    assert all(list(e.message_dict) == ["count"] for e in refusals)
    assert all((p.total_licenses, p.used) == (5, 0) for p in split_off)
    assert sum(p.total_licenses for p in packs) == 200  # totals conserved
    assert source.total_licenses == 200 - 5 * len(split_off)
    active = active_units("WE-RACE1")
    assert set(removed).isdisjoint(active) and set(UNITS[60:80]) <= set(active)
    assert source.used == len(active) <= source.total_licenses
    assert LicenseSlot.objects.filter(released_at__isnull=False).count() == 60  # each removed once
    assert LicenseSlot.objects.count() == 60 + len(active)  # no slot lost
    assert_invariants()


def _merger(target, sources, refusals):
    try:
        merge_packs(target, sources, actor="merger")
    except ValidationError as exc:
        refusals.append(exc)


def _asker(pack_ids, fingerprint, units, refusals):
    for i, unit in enumerate(units):
        try:
            request_licenses(pack_ids[i % len(pack_ids)], [unit], ums_fingerprint=fingerprint)
        except LicenseServiceError as exc:
            assert exc.code == LicenseErrorCode.PACK_NOT_ACTIVE  # merged meanwhile
            refusals.append(exc)


def _releaser(pack_id, units, refusals):
    for unit in units:
        release_license(pack_id, unit)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_crosswise_merges_requests_and_releases_neither_deadlock_nor_lose_licenses(postgres):
    key = SubscriptionKey.objects.create(company=f.company(), key="SK-RACE-0001")
    ids = ["WE-RACEA", "WE-RACEB", "WE-RACEC", "WE-RACED"]
    for pack_id in ids:
        f.pack(pack_id, total=50, subscription_key=key)
    fingerprint = fp()
    for n, pack_id in enumerate(ids):
        bind(pack_id, UNITS[10 * n : 10 * n + 10])
    plans = [
        (_merger, ("WE-RACEA", ["WE-RACEB"])),
        (_merger, ("WE-RACEB", ["WE-RACEA"])),  # crosswise: pk-ordered locks keep it deadlock-free
        (_merger, ("WE-RACED", ["WE-RACEC"])),
        (_merger, ("WE-RACEC", ["WE-RACED", "WE-RACEB"])),
    ]
    plans += [(_asker, (ids, fingerprint, UNITS[100 + 40 * i : 140 + 40 * i])) for i in range(3)]
    plans += [(_releaser, (pack_id, UNITS[10 * n : 10 * n + 5])) for n, pack_id in enumerate(ids)]

    race(plans)

    packs = {p.pack_id: p for p in ProductPack.objects.all()}
    assert sum(p.total_licenses for p in packs.values()) == 200
    merged = [p for p in packs.values() if p.status == PackStatus.MERGED]
    assert merged  # at least one merge got through
    for p in merged:
        assert (p.total_licenses, p.used) == (0, 0)
        end = p
        while end.status == PackStatus.MERGED:
            end = end.merged_into
        assert end.status == PackStatus.ACTIVE
    # every release reached its slot, wherever a merge had moved it
    assert LicenseSlot.objects.filter(released_at__isnull=False).count() == 20
    assert LicenseSlot.objects.filter(released_at__isnull=True, pack__status=PackStatus.MERGED).count() == 0
    granted = LicenseSlot.objects.filter(released_at__isnull=True).values_list("unit_id", flat=True)
    assert Counter(Counter(granted).values()) == {1: len(granted)}  # no unit holds two slots
    assert_invariants()


@pytest.mark.django_db
def test_a_pack_added_in_the_admin_starts_its_size_history(admin_client):
    from django.urls import reverse

    company = f.company()
    data = {
        "pack_id": "WE-ADMIN",
        "company": company.pk,
        "product_name": "IGEL WE",
        "product_type": "WE",
        "total_licenses": "25",
        "start_date": "2026-12-01",
        "expiry_date": "",
        "status": "ACTIVE",
        "comment": "",
        "created_at_0": "2026-12-03",
        "created_at_1": "12:00:00",
    }
    response = admin_client.post(reverse("admin:licensing_productpack_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert history("WE-ADMIN") == [(0, 25, "CREATED", "admin", "added in the admin")]
    assert ProductPack.objects.get(pack_id="WE-ADMIN").service == "WE"
