"""Re-importing a pack list after the License Portal changed its packs (split, merge, licenses in use),
and text the database cannot store (NUL).

After a split or merge the License Portal is the source of truth for a pack's size: an import keeps
that size (and says so when the file's differs), never touches a MERGED pack, and never writes ``used``.
The demo list (rows 0-7): WE-NT6ZM, WE-JTWXX, WE-BRFVW (30), WE-GNRD6, EMP-2PMH4, ADR-R2JGU, DEMO-JE6BK,
UDC3-4PSNV."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from licensing.models import LicenseSlot, PackSizeChange, PackStatus, ProductPack
from licensing.services import merge_packs, split_pack
from tests.test_import_packs import (
    DEMO_COMPANY,
    DEMO_CSV,
    EMPTY,
    demo_rows,
    rejected,
    run,
    snapshot,
    write_rows,
)

pytestmark = pytest.mark.django_db

DEMO_NAME = "ilp-product-packs.csv"


@pytest.fixture
def packs_csv(tmp_path):
    """The demo rows, changed as a test says, in tmp_path/packs.csv: packs_csv({index: changes})."""

    def make(changes):
        rows = demo_rows()
        for index, values in changes.items():
            rows[index].update(values)
        return write_rows(tmp_path / "packs.csv", rows)

    return make


def state(*pack_ids):
    return {
        p: tuple(ProductPack.objects.filter(pack_id=p).values_list("total_licenses", "used", "status").get())
        for p in pack_ids
    }


def packs_and_history():
    return (
        list(ProductPack.objects.order_by("pk").values()),
        list(PackSizeChange.objects.order_by("pk").values()),
    )


def kept_line(source, index, pack_id, kept, file_value):
    return (
        f"{source}[{index}] {pack_id}: kept the License Portal's {kept} licenses, not the file's "
        f"{file_value} (the pack was split or merged in the License Portal; its size stands)"
    )


def merged_line(source, index, pack_id, target):
    return (
        f"{source}[{index}] {pack_id}: skipped, merged into {target} in the License Portal "
        "(an import does not change a merged pack)"
    )


def split_twice():
    run(DEMO_CSV, *DEMO_COMPANY)
    ProductPack.objects.filter(pack_id="WE-BRFVW").update(used=5)
    a = split_pack("WE-BRFVW", count=3, actor="alice")
    b = split_pack("WE-BRFVW", count=3, actor="alice")
    return a.pack_id, b.pack_id


# --- splits ----------------------------------------------------------------------------------------
def test_reimport_after_two_splits_keeps_the_split_sizes_and_says_so():
    a, b = split_twice()
    before = packs_and_history()

    out, err = run(DEMO_CSV, *DEMO_COMPANY)

    assert out == [
        "Imported packs: 0 new, 0 updated, 8 unchanged",
        kept_line(DEMO_NAME, 2, "WE-BRFVW", 24, 30),
    ]
    assert err == ""
    assert state("WE-BRFVW", a, b) == {
        "WE-BRFVW": (24, 5, PackStatus.ACTIVE),
        a: (3, 0, PackStatus.ACTIVE),
        b: (3, 0, PackStatus.ACTIVE),
    }
    assert packs_and_history() == before  # no row, no size-history entry


def test_a_file_with_the_split_size_changes_nothing_and_says_nothing(packs_csv):
    a, b = split_twice()
    before = packs_and_history()

    out, _ = run(packs_csv({2: {"licenses": "24"}}))

    assert out == ["Imported packs: 0 new, 0 updated, 8 unchanged"]
    assert packs_and_history() == before


def test_other_changes_of_a_split_pack_apply_but_its_size_stays(packs_csv):
    a, b = split_twice()

    out, _ = run(packs_csv({2: {"licenses": "40", "comment": "renewed"}}))

    assert out == [
        "Imported packs: 0 new, 1 updated, 7 unchanged",
        kept_line("packs.csv", 2, "WE-BRFVW", 24, 40),
    ]
    pack = ProductPack.objects.get(pack_id="WE-BRFVW")
    assert (pack.total_licenses, pack.used, pack.comment) == (24, 5, "renewed")
    assert state(a, b) == {a: (3, 0, PackStatus.ACTIVE), b: (3, 0, PackStatus.ACTIVE)}
    assert list(PackSizeChange.objects.filter(pack=pack).values_list("reason", flat=True)) == [
        "SPLIT",
        "SPLIT",
        "IMPORT",
    ]


def test_a_dry_run_after_a_split_reports_the_kept_size_too():
    split_twice()
    before = packs_and_history()

    out, _ = run(DEMO_CSV, "--dry-run")

    assert out == [
        "Dry run, nothing written. Would import packs: 0 new, 0 updated, 8 unchanged",
        kept_line(DEMO_NAME, 2, "WE-BRFVW", 24, 30),
    ]
    assert packs_and_history() == before


# --- merges ----------------------------------------------------------------------------------------
def test_reimport_never_changes_a_merged_pack():
    run(DEMO_CSV, *DEMO_COMPANY)
    new = split_pack("WE-BRFVW", count=10, actor="alice").pack_id
    merge_packs(new, ["WE-BRFVW"], actor="carol")
    before = packs_and_history()

    out, _ = run(DEMO_CSV)

    assert out == [
        "Imported packs: 0 new, 0 updated, 8 unchanged",
        merged_line(DEMO_NAME, 2, "WE-BRFVW", new),
    ]
    assert state("WE-BRFVW", new) == {"WE-BRFVW": (0, 0, PackStatus.MERGED), new: (30, 0, PackStatus.ACTIVE)}
    assert ProductPack.objects.get(pack_id="WE-BRFVW").merged_into.pack_id == new
    assert packs_and_history() == before


def test_a_changed_row_of_a_merged_pack_is_skipped_whole(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    new = split_pack("WE-BRFVW", count=10, actor="alice").pack_id
    merge_packs(new, ["WE-BRFVW"], actor="carol")
    before = packs_and_history()

    out, _ = run(packs_csv({2: {"licenses": "5", "comment": "changed", "expiry_date": "2029-01-01"}}))

    assert out == [
        "Imported packs: 0 new, 0 updated, 8 unchanged",
        merged_line("packs.csv", 2, "WE-BRFVW", new),
    ]
    assert packs_and_history() == before


def test_a_pack_grown_by_a_merge_keeps_its_merged_size(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    new = split_pack("WE-BRFVW", count=10, actor="alice").pack_id
    merge_packs("WE-BRFVW", [new], actor="carol")
    before = packs_and_history()

    out, _ = run(packs_csv({2: {"licenses": "20"}}))

    assert out == [
        "Imported packs: 0 new, 0 updated, 8 unchanged",
        kept_line("packs.csv", 2, "WE-BRFVW", 30, 20),
    ]
    assert state("WE-BRFVW", new) == {"WE-BRFVW": (30, 0, PackStatus.ACTIVE), new: (0, 0, PackStatus.MERGED)}
    assert packs_and_history() == before


# --- used ------------------------------------------------------------------------------------------
def test_an_import_never_writes_used(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    ProductPack.objects.filter(pack_id="WE-NT6ZM").update(used=10)

    with CaptureQueriesContext(connection) as queries:
        out, _ = run(packs_csv({0: {"licenses": "12", "comment": "smaller"}}))

    assert out == ["Imported packs: 0 new, 1 updated, 7 unchanged"]
    writes = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "licensing_productpack"')]
    assert writes and not [sql for sql in writes if '"used"' in sql]
    assert state("WE-NT6ZM") == {"WE-NT6ZM": (12, 10, PackStatus.ACTIVE)}  # never split: the file's size
    assert list(
        PackSizeChange.objects.filter(pack__pack_id="WE-NT6ZM").values_list(
            "old_total", "new_total", "reason"
        )
    ) == [(120, 12, "IMPORT"), (0, 120, "IMPORT")]


def test_used_is_checked_against_the_locked_row(packs_csv, monkeypatch):
    """A license bound after the file was read but before the import's transaction is counted."""
    from licensing import importers

    run(DEMO_CSV, *DEMO_COMPANY)
    path = packs_csv({0: {"licenses": "12"}})
    validate = importers.validate_packs

    def validate_then_bind(*args):
        packs = validate(*args)
        ProductPack.objects.filter(pack_id="WE-NT6ZM").update(used=13)  # another request meanwhile
        return packs

    monkeypatch.setattr(importers, "validate_packs", validate_then_bind)
    _, lines = rejected(path)

    assert lines == ["packs.csv[0] licenses=12: fewer than the 13 licenses already in use"]
    assert ProductPack.objects.get(pack_id="WE-NT6ZM").total_licenses == 120  # (the rejection rolled back)


# --- seed_demo -------------------------------------------------------------------------------------
def seed():
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def test_seed_demo_after_splits_changes_nothing():
    seed()
    used = ProductPack.objects.get(pack_id="WE-BRFVW").used
    a = split_pack("WE-BRFVW", count=3, actor="alice").pack_id
    b = split_pack("WE-BRFVW", count=3, actor="alice").pack_id
    before = packs_and_history(), list(LicenseSlot.objects.order_by("pk").values())

    out = seed()

    assert out[0] == "Imported packs: 0 new, 0 updated, 8 unchanged"
    assert out[1] == kept_line(DEMO_NAME, 2, "WE-BRFVW", 24, 30)
    assert state("WE-BRFVW", a, b) == {
        "WE-BRFVW": (24, used, PackStatus.ACTIVE),
        a: (3, 0, PackStatus.ACTIVE),
        b: (3, 0, PackStatus.ACTIVE),
    }
    assert (packs_and_history(), list(LicenseSlot.objects.order_by("pk").values())) == before


def test_seed_demo_after_a_merge_changes_nothing():
    seed()
    new = split_pack("WE-BRFVW", count=3, actor="alice").pack_id
    merge_packs(new, ["WE-BRFVW"], actor="carol")
    before = packs_and_history()

    out = seed()

    assert out[:2] == [
        "Imported packs: 0 new, 0 updated, 8 unchanged",
        merged_line(DEMO_NAME, 2, "WE-BRFVW", new),
    ]
    assert ProductPack.objects.get(pack_id="WE-BRFVW").status == PackStatus.MERGED
    assert ProductPack.objects.get(pack_id=new).total_licenses == 30
    assert packs_and_history() == before


# --- NUL -------------------------------------------------------------------------------------------
def test_a_nul_character_rejects_the_whole_file_naming_row_field_and_value(packs_csv):
    path = packs_csv({1: {"product": "IGEL\x00 WE"}, 4: {"comment": "bad\x00"}})

    message, lines = rejected(path, *DEMO_COMPANY, "--assign", "--accept-eula")

    assert message == f"{path}: 2 bad record(s); nothing was imported"
    assert lines == [
        "packs.csv[1] product='IGEL\\x00 WE': contains a NUL character",
        "packs.csv[4] comment='bad\\x00': contains a NUL character",
    ]
    assert snapshot() == EMPTY


def test_a_nul_character_in_a_reimport_changes_nothing(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    before = snapshot()

    _, lines = rejected(packs_csv({0: {"pack_id": "WE-NT6ZM\x00", "subscription_key": "SK\x00"}}))

    assert lines == [
        "packs.csv[0] pack_id='WE-NT6ZM\\x00': contains a NUL character",
        "packs.csv[0] subscription_key='SK\\x00': contains a NUL character",
    ]
    assert snapshot() == before
