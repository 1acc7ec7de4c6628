"""``manage.py import_packs FILE.csv``: the License Portal pack list of one company. A file with any bad
row is rejected whole, every bad row is listed (index, field, value) and nothing is written, not even
the company or this portal's UMS ID. ``--assign`` assigns the packs to this portal's UMS ID and
registers them in the UMS with their default distribution method.

The demo list (rows 0-7): WE-NT6ZM, WE-JTWXX, WE-BRFVW, WE-GNRD6 (expired), EMP-2PMH4, ADR-R2JGU
(ADDON), DEMO-JE6BK, UDC3-4PSNV (perpetual); 6 orders and 3 subscription keys."""

import csv
import datetime
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from devices.models import DeploymentEvent, DeploymentSettings, RegisteredPack
from licensing.importers import COLUMNS
from licensing.models import Company, Order, ProductPack, SubscriptionKey, UmsId
from tests import factories
from tests.conftest import DEMO_NOW

pytestmark = pytest.mark.django_db

DEMO_CSV = Path(settings.BASE_DIR) / "demo_data" / "ilp-product-packs.csv"
DEMO_COMPANY = ["--company", "Demo Company AG", "--global-account-id", "GA-100234"]
DEMO_ORDERS = ["EVAL-0001", "ORD-190301", "ORD-221111", "ORD-231030", "ORD-240117", "ORD-250402"]
WE_PACKS = ["WE-BRFVW", "WE-GNRD6", "WE-JTWXX", "WE-NT6ZM"]
OTHER_PACKS = ["ADR-R2JGU", "DEMO-JE6BK", "EMP-2PMH4", "UDC3-4PSNV"]
NOT_A_COUNT = "must be a whole number of at least 1"
NOT_A_DATE = "not a date of the form YYYY-MM-DD"
PRODUCT_TYPES = "unknown product type (one of WE, EMP, ADDON, DEMO, UDC3, UDP, UMA)"


# --- helpers ------------------------------------------------------------------------------------
def demo_rows():
    with open(DEMO_CSV, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, header=COLUMNS):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def packs_csv(tmp_path):
    """Write the demo rows, changed as a test says, to tmp_path/packs.csv: packs_csv({index: changes})."""

    def make(changes=None, extra=()):
        rows = demo_rows()
        for index, values in (changes or {}).items():
            rows[index].update(values)
        return write_rows(tmp_path / "packs.csv", rows + list(extra))

    return make


def run(path, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_packs", str(path), *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def rejected(path, *args):
    """Run an import that must fail; returns (CommandError message, stderr lines)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_packs", str(path), *args, stdout=out, stderr=err)
    assert out.getvalue() == ""
    return str(exc.value), err.getvalue().splitlines()


TABLES = (
    Company,
    Order,
    SubscriptionKey,
    UmsId,
    ProductPack,
    RegisteredPack,
    DeploymentSettings,
    DeploymentEvent,
)
EMPTY = {model.__name__: [] for model in TABLES}  # a fresh database


def snapshot():
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in TABLES}


def assigned_line():
    conf = DeploymentSettings.load()
    return (
        f"Assigned to UMS ID {conf.ums_id_name} ({conf.ums_id_fingerprint[:14]}...); registered in the UMS:"
    )


# --- the demo list ------------------------------------------------------------------------------
def test_demo_pack_list_imports_exactly_its_eight_packs():
    out, err = run(DEMO_CSV, *DEMO_COMPANY)

    assert out == ["Imported packs: 8 new, 0 updated, 0 unchanged"]
    assert err == ""
    company = Company.objects.get()
    assert (company.name, company.global_account_id) == ("Demo Company AG", "GA-100234")
    assert sorted(ProductPack.objects.values_list("pack_id", flat=True)) == sorted(WE_PACKS + OTHER_PACKS)
    assert set(ProductPack.objects.values_list("company", flat=True)) == {company.pk}
    assert sorted(Order.objects.values_list("number", flat=True)) == DEMO_ORDERS
    assert sorted(SubscriptionKey.objects.values_list("key", flat=True)) == [
        "SK-0OLD-11AA",
        "SK-3M8P-22LA",
        "SK-7H2K-91QX",
    ]
    # no --assign, no --accept-eula: nothing assigned, registered or accepted
    assert not ProductPack.objects.filter(assigned_ums__isnull=False).exists()
    assert (UmsId.objects.count(), RegisteredPack.objects.count()) == (0, 0)
    assert not Order.objects.filter(eula_accepted_at__isnull=False).exists()


def test_pack_rows_keep_their_values():
    run(DEMO_CSV, *DEMO_COMPANY)

    we = ProductPack.objects.select_related("order", "subscription_key").get(pack_id="WE-NT6ZM")
    assert (we.product_name, we.product_type, we.service) == ("IGEL Workspace Edition", "WE", "WE")
    assert (we.total_licenses, we.used) == (120, 0)
    assert (we.start_date, we.expiry_date) == (datetime.date(2024, 12, 1), datetime.date(2027, 12, 1))
    assert (we.subscription_key.key, we.order.number, we.comment) == ("SK-7H2K-91QX", "ORD-240117", "")
    assert we.effective_status() == "ACTIVE"

    soon = ProductPack.objects.get(pack_id="WE-BRFVW")
    assert (soon.expiry_date, soon.comment) == (datetime.date(2026, 12, 6), "expires soon: exchange")
    assert ProductPack.objects.get(pack_id="WE-GNRD6").effective_status() == "EXPIRED"

    addon = ProductPack.objects.get(pack_id="ADR-R2JGU")
    assert (addon.product_type, addon.service, addon.total_licenses) == ("ADDON", "ADDON_ADR", 40)
    demo = ProductPack.objects.get(pack_id="DEMO-JE6BK")
    assert (demo.product_type, demo.service, demo.order.number) == ("DEMO", "WE", "EVAL-0001")
    assert demo.subscription_key is None

    perpetual = ProductPack.objects.get(pack_id="UDC3-4PSNV")
    assert (perpetual.expiry_date, perpetual.perpetual, perpetual.comment) == (None, True, "perpetual")
    assert perpetual.start_date == datetime.date(2024, 12, 1)
    # three packs of one order share it
    assert sorted(Order.objects.get(number="ORD-250402").packs.values_list("pack_id", flat=True)) == [
        "ADR-R2JGU",
        "EMP-2PMH4",
        "WE-JTWXX",
    ]


def test_importing_the_same_file_twice_changes_nothing():
    run(DEMO_CSV, *DEMO_COMPANY)
    before = snapshot()

    out, _ = run(DEMO_CSV, *DEMO_COMPANY)

    assert out == ["Imported packs: 0 new, 0 updated, 8 unchanged"]
    assert snapshot() == before


def test_a_changed_row_updates_its_pack(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    others = list(ProductPack.objects.exclude(pack_id="WE-NT6ZM").values())

    out, _ = run(packs_csv({0: {"licenses": "150", "expiry_date": "2028-12-01", "comment": "extended"}}))

    assert out == ["Imported packs: 0 new, 1 updated, 7 unchanged"]
    we = ProductPack.objects.get(pack_id="WE-NT6ZM")
    assert (we.total_licenses, we.expiry_date, we.comment) == (150, datetime.date(2028, 12, 1), "extended")
    assert list(ProductPack.objects.exclude(pack_id="WE-NT6ZM").values()) == others


# --- --assign and --accept-eula -------------------------------------------------------------------
def test_assign_gives_the_packs_to_this_portals_ums_id_with_default_distribution_methods():
    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--assign")

    conf = DeploymentSettings.load()
    ums = UmsId.objects.get()
    assert (ums.fingerprint, ums.name) == (conf.ums_id_fingerprint, conf.ums_id_name)
    assert len(ums.fingerprint) == 95  # SHA-256 as 32 colon-separated pairs
    assert ums.company == Company.objects.get(global_account_id="GA-100234")
    assert ProductPack.objects.filter(assigned_ums=ums).count() == 8
    methods = dict(RegisteredPack.objects.values_list("pack_id", "distribution_method"))
    assert methods == {
        **dict.fromkeys(WE_PACKS, "ENABLED"),
        **dict.fromkeys(OTHER_PACKS, "CONDITIONS"),
    }
    assert out == [
        "Imported packs: 8 new, 0 updated, 0 unchanged",
        f"{assigned_line()} 8 new, 0 refreshed.",
        f"EULA not accepted for order(s) {', '.join(DEMO_ORDERS)}: their packs are not deployed until it "
        "is (--accept-eula).",
    ]
    # without the EULA no pack is usable in the UMS
    assert not RegisteredPack.objects.filter(ils_usable=True).exists()
    assert DeploymentEvent.objects.filter(action="register_pack", actor="import_packs").count() == 8


def test_registered_packs_carry_the_pack_values():
    run(DEMO_CSV, *DEMO_COMPANY, "--assign", "--accept-eula")

    rp = RegisteredPack.objects.get(pack_id="WE-NT6ZM")
    assert (rp.product_type, rp.service, rp.total, rp.used) == ("WE", "WE", 120, 0)
    assert (rp.start_date, rp.expiry_date) == (datetime.date(2024, 12, 1), datetime.date(2027, 12, 1))
    assert (rp.ils_status, rp.ils_usable, rp.active) == ("ACTIVE", True, True)
    assert RegisteredPack.objects.get(pack_id="DEMO-JE6BK").service == "WE"
    assert RegisteredPack.objects.get(pack_id="ADR-R2JGU").service == "ADDON_ADR"
    expired = RegisteredPack.objects.get(pack_id="WE-GNRD6")
    assert (expired.ils_status, expired.ils_usable) == ("EXPIRED", False)
    assert RegisteredPack.objects.get(pack_id="UDC3-4PSNV").expiry_date is None


def test_accept_eula_accepts_the_orders_of_the_file():
    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--accept-eula", "--assign")

    accepted = list(
        Order.objects.order_by("number").values_list("number", "eula_accepted_by", "eula_accepted_at")
    )
    assert accepted == [(number, "import_packs --accept-eula", DEMO_NOW) for number in DEMO_ORDERS]
    assert out == ["Imported packs: 8 new, 0 updated, 0 unchanged", f"{assigned_line()} 8 new, 0 refreshed."]
    assert RegisteredPack.objects.filter(ils_usable=True).count() == 7  # all but the expired one


def test_accept_eula_leaves_an_order_accepted_earlier_and_other_orders_alone():
    company = Company.objects.create(name="Demo Company AG", global_account_id="GA-100234")
    earlier = DEMO_NOW - datetime.timedelta(days=400)
    Order.objects.create(
        company=company, number="ORD-240117", eula_accepted_by="alice", eula_accepted_at=earlier
    )
    Order.objects.create(company=company, number="ORD-999999")  # not in the file

    run(DEMO_CSV, *DEMO_COMPANY, "--accept-eula")

    kept = Order.objects.get(number="ORD-240117")
    assert (kept.eula_accepted_by, kept.eula_accepted_at) == ("alice", earlier)
    assert Order.objects.get(number="ORD-999999").eula_accepted_at is None
    assert Order.objects.get(number="ORD-250402").eula_accepted_by == "import_packs --accept-eula"


def test_accepting_the_eula_later_makes_the_registered_packs_usable():
    run(DEMO_CSV, *DEMO_COMPANY, "--assign")
    assert RegisteredPack.objects.filter(ils_usable=True).count() == 0

    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--assign", "--accept-eula")

    assert out == ["Imported packs: 0 new, 0 updated, 8 unchanged", f"{assigned_line()} 0 new, 8 refreshed."]
    assert RegisteredPack.objects.filter(ils_usable=True).count() == 7
    assert not Order.objects.filter(eula_accepted_at__isnull=True).exists()


def test_assigning_twice_changes_nothing_but_a_refresh():
    run(DEMO_CSV, *DEMO_COMPANY, "--assign", "--accept-eula")
    before = snapshot()
    del before["DeploymentEvent"]  # how a refresh is logged is the UMS side's business

    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--assign", "--accept-eula")

    assert out == ["Imported packs: 0 new, 0 updated, 8 unchanged", f"{assigned_line()} 0 new, 8 refreshed."]
    after = snapshot()
    del after["DeploymentEvent"]
    assert after == before
    assert DeploymentEvent.objects.filter(action="register_pack").count() == 8  # none registered twice


def test_assign_reassigns_packs_imported_without_it_and_refreshes_changed_counts(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--assign")
    assert out[:2] == [
        "Imported packs: 0 new, 8 updated, 0 unchanged",
        f"{assigned_line()} 8 new, 0 refreshed.",
    ]

    out, _ = run(packs_csv({4: {"licenses": "75"}}), "--assign")

    assert out[:2] == [
        "Imported packs: 0 new, 1 updated, 7 unchanged",
        f"{assigned_line()} 0 new, 8 refreshed.",
    ]
    assert RegisteredPack.objects.get(pack_id="EMP-2PMH4").total == 75
    # an administrator's choice of distribution method survives a refresh
    assert RegisteredPack.objects.get(pack_id="EMP-2PMH4").distribution_method == "CONDITIONS"


# --- which company --------------------------------------------------------------------------------
def test_an_existing_global_account_id_picks_its_company():
    acme = factories.company()  # Acme GmbH, GA-000001
    factories.company("Other AG", "GA-000002")

    run(DEMO_CSV, "--global-account-id", "GA-000001")

    assert set(ProductPack.objects.values_list("company", flat=True)) == {acme.pk}
    assert Company.objects.count() == 2


def test_a_company_name_alone_picks_that_company():
    factories.company()
    other = factories.company("Other AG", "GA-000002")

    run(DEMO_CSV, "--company", "Other AG")

    assert set(ProductPack.objects.values_list("company", flat=True)) == {other.pk}


def test_the_only_company_is_used_when_none_is_named():
    acme = factories.company()

    run(DEMO_CSV)

    assert ProductPack.objects.filter(company=acme).count() == 8


@pytest.mark.parametrize(
    "companies, args, message",
    [
        ([], [], "Name the company: --company NAME --global-account-id ID (no company exists yet)."),
        (
            [("Acme GmbH", "GA-000001"), ("Other AG", "GA-000002")],
            [],
            "Name the company: --company NAME --global-account-id ID (there is more than one).",
        ),
        (
            [],
            ["--global-account-id", "GA-777"],
            "--global-account-id='GA-777': no such company; add --company NAME to create it.",
        ),
        (
            [("Acme GmbH", "GA-000001")],
            ["--company", "Demo Company AG"],
            "--company='Demo Company AG': no such company; give --global-account-id too.",
        ),
        (
            [("Acme GmbH", "GA-000001"), ("Acme GmbH", "GA-000009")],
            ["--company", "Acme GmbH"],
            "--company='Acme GmbH': more than one such company; give --global-account-id too.",
        ),
    ],
)
def test_an_unclear_company_is_refused(companies, args, message):
    for name, account in companies:
        factories.company(name, account)
    before = snapshot()

    with pytest.raises(CommandError) as exc:
        run(DEMO_CSV, *args, "--assign")

    assert str(exc.value) == message
    assert snapshot() == before


# --- bad rows: the whole file is rejected ---------------------------------------------------------
BAD_ROWS = {  # id: (index, changes, the error line after "packs.csv[index] ")
    "pack-id-lower-case": (0, {"pack_id": "we-nt6zm"}, "pack_id='we-nt6zm': not of the form PREFIX-XXXXX"),
    "pack-id-no-dash": (0, {"pack_id": "WENT6ZM"}, "pack_id='WENT6ZM': not of the form PREFIX-XXXXX"),
    "pack-id-short": (0, {"pack_id": "WE-NT6Z"}, "pack_id='WE-NT6Z': not of the form PREFIX-XXXXX"),
    "pack-id-long-prefix": (
        0,
        {"pack_id": "WORKSPACE-NT6ZM"},
        "pack_id='WORKSPACE-NT6ZM': not of the form PREFIX-XXXXX",
    ),
    "pack-id-duplicate": (3, {"pack_id": "WE-NT6ZM"}, "pack_id='WE-NT6ZM': duplicate pack ID (also row 0)"),
    "pack-id-missing": (2, {"pack_id": ""}, "pack_id='': missing"),
    "product-missing": (1, {"product": "  "}, "product='  ': missing"),
    "product-too-long": (1, {"product": "P" * 201}, f"product='{'P' * 201}': longer than 200 characters"),
    "type-lower-case": (4, {"product_type": "emp"}, f"product_type='emp': {PRODUCT_TYPES}"),
    "type-unknown": (4, {"product_type": "Workspace"}, f"product_type='Workspace': {PRODUCT_TYPES}"),
    "licenses-zero": (5, {"licenses": "0"}, f"licenses='0': {NOT_A_COUNT}"),
    "licenses-negative": (5, {"licenses": "-5"}, f"licenses='-5': {NOT_A_COUNT}"),
    "licenses-word": (5, {"licenses": "ten"}, f"licenses='ten': {NOT_A_COUNT}"),
    "licenses-fraction": (5, {"licenses": "12.5"}, f"licenses='12.5': {NOT_A_COUNT}"),
    "licenses-underscore": (5, {"licenses": "1_000"}, f"licenses='1_000': {NOT_A_COUNT}"),
    "licenses-plus": (5, {"licenses": "+40"}, f"licenses='+40': {NOT_A_COUNT}"),
    "licenses-huge": (5, {"licenses": "99999999999"}, "licenses='99999999999': more than 2147483647"),
    "licenses-missing": (5, {"licenses": ""}, "licenses='': missing"),
    "start-missing": (6, {"start_date": ""}, "start_date='': missing"),
    "start-month-13": (6, {"start_date": "2026-13-01"}, f"start_date='2026-13-01': {NOT_A_DATE}"),
    "start-german": (6, {"start_date": "21.11.2026"}, f"start_date='21.11.2026': {NOT_A_DATE}"),
    "start-basic-iso": (6, {"start_date": "20261121"}, f"start_date='20261121': {NOT_A_DATE}"),
    "start-iso-week": (6, {"start_date": "2026-W47-6"}, f"start_date='2026-W47-6': {NOT_A_DATE}"),
    "expiry-no-such-day": (7, {"expiry_date": "2027-02-30"}, f"expiry_date='2027-02-30': {NOT_A_DATE}"),
    "expiry-before-start": (2, {"expiry_date": "2023-12-01"}, "expiry_date='2023-12-01': before start_date"),
    "order-too-long": (
        7,
        {"order_number": "O" * 41},
        f"order_number='{'O' * 41}': longer than 40 characters",
    ),
    "key-too-long": (
        0,
        {"subscription_key": "K" * 41},
        f"subscription_key='{'K' * 41}': longer than 40 characters",
    ),
}


@pytest.mark.parametrize("index, changes, error", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_rejects_the_whole_file(packs_csv, index, changes, error):
    path = packs_csv({index: changes})

    message, lines = rejected(path, *DEMO_COMPANY, "--assign", "--accept-eula")

    assert message == f"{path}: 1 bad record(s); nothing was imported"
    assert lines == [f"packs.csv[{index}] {error}"]
    assert snapshot() == EMPTY  # not the company, the UMS ID, an order or a registered pack either


def test_a_bad_row_also_rejects_a_dry_run(packs_csv):
    path = packs_csv({5: {"licenses": "ten"}})

    _, lines = rejected(path, *DEMO_COMPANY, "--dry-run")

    assert lines == [f"packs.csv[5] licenses='ten': {NOT_A_COUNT}"]
    assert snapshot() == EMPTY


def test_expiry_on_the_start_day_is_accepted(packs_csv):
    run(packs_csv({2: {"expiry_date": "2023-12-02"}}), *DEMO_COMPANY)

    assert ProductPack.objects.get(pack_id="WE-BRFVW").expiry_date == datetime.date(2023, 12, 2)


def test_every_bad_row_is_listed_in_file_order(packs_csv):
    path = packs_csv(
        {
            1: {"licenses": "-1", "start_date": "2025/12/01"},
            4: {"product_type": "XYZ"},
            6: {"pack_id": "DEMO_JE6BK", "expiry_date": "2026-01-01"},
        }
    )

    message, lines = rejected(path, *DEMO_COMPANY)

    assert message == f"{path}: 5 bad record(s); nothing was imported"
    assert lines == [
        f"packs.csv[1] licenses='-1': {NOT_A_COUNT}",
        f"packs.csv[1] start_date='2025/12/01': {NOT_A_DATE}",
        f"packs.csv[4] product_type='XYZ': {PRODUCT_TYPES}",
        "packs.csv[6] pack_id='DEMO_JE6BK': not of the form PREFIX-XXXXX",
        "packs.csv[6] expiry_date='2026-01-01': before start_date",
    ]
    assert snapshot() == EMPTY


def test_a_row_with_more_cells_than_columns_is_rejected(tmp_path):
    text = DEMO_CSV.read_text(encoding="utf-8").replace(
        "UDC3-4PSNV,IGEL UDC3 / OS Creator,UDC3,15,2024-12-01,,,ORD-190301,perpetual",
        "UDC3-4PSNV,IGEL UDC3 / OS Creator,UDC3,15,2024-12-01,,,ORD-190301,perpetual,oops,again",
    )
    path = tmp_path / "packs.csv"
    path.write_text(text, encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    assert lines == ["packs.csv[7] row=['oops', 'again']: more cells than the header has columns"]
    assert snapshot() == EMPTY


def test_a_row_with_too_few_cells_is_rejected(tmp_path):
    text = DEMO_CSV.read_text(encoding="utf-8") + "WE-ABCDE,IGEL Workspace Edition\n"
    path = tmp_path / "packs.csv"
    path.write_text(text, encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    assert lines == [
        "packs.csv[8] product_type=None: missing",
        "packs.csv[8] licenses=None: missing",
        "packs.csv[8] start_date=None: missing",
    ]
    assert snapshot() == EMPTY


def test_a_header_without_a_required_column_is_rejected(tmp_path):
    header = [c for c in COLUMNS if c != "licenses"]
    path = write_rows(tmp_path / "packs.csv", demo_rows(), header=header)

    message, lines = rejected(path, *DEMO_COMPANY)

    assert message == f"{path}: 1 bad record(s); nothing was imported"
    assert lines == [f"packs.csv header='{','.join(header)}': missing column(s): licenses"]
    assert snapshot() == EMPTY


def test_an_empty_file_is_rejected(tmp_path):
    path = tmp_path / "packs.csv"
    path.write_text("", encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    assert lines == [
        "packs.csv header='': missing column(s): pack_id, product, product_type, licenses, start_date"
    ]
    assert snapshot() == EMPTY


def test_an_unterminated_quote_is_rejected_not_swallowed(tmp_path):
    text = DEMO_CSV.read_text(encoding="utf-8").replace("WE-GNRD6,IGEL", 'WE-GNRD6,"IGEL')
    path = tmp_path / "packs.csv"
    path.write_text(text, encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    # header on line 1, rows 0-2 on lines 2-4: row 3 starts on line 5 and never ends
    assert lines == ["packs.csv[3] file='packs.csv': not valid CSV at line 5: unexpected end of data"]
    assert snapshot() == EMPTY


def test_a_stray_quote_inside_a_cell_is_rejected(tmp_path):
    text = DEMO_CSV.read_text(encoding="utf-8").replace(",expired", ',"exp"ired')
    path = tmp_path / "packs.csv"
    path.write_text(text, encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    assert lines == ["packs.csv[3] file='packs.csv': not valid CSV at line 5: ',' expected after '\"'"]
    assert snapshot() == EMPTY


def test_a_malformed_header_is_rejected(tmp_path):
    path = tmp_path / "packs.csv"
    path.write_text('"pack_id"x,product\n' + DEMO_CSV.read_text(encoding="utf-8"), encoding="utf-8")

    _, lines = rejected(path, *DEMO_COMPANY)

    assert lines == ["packs.csv file='packs.csv': not valid CSV at line 1: ',' expected after '\"'"]
    assert snapshot() == EMPTY


def test_a_file_that_is_not_utf8_is_rejected(tmp_path):
    path = tmp_path / "packs.csv"
    path.write_bytes(DEMO_CSV.read_bytes().replace(b"IGEL UDC3", b"IGEL \xdcDC3"))

    _, lines = rejected(path, *DEMO_COMPANY)

    assert len(lines) == 1
    assert lines[0].startswith("packs.csv file='packs.csv': not a UTF-8 CSV file: 'utf-8' codec can't decode")
    assert snapshot() == EMPTY


def test_a_missing_file_is_rejected(tmp_path):
    path = tmp_path / "nope.csv"

    message, lines = rejected(path, *DEMO_COMPANY)

    assert message == f"{path}: 1 bad record(s); nothing was imported"
    assert lines == [f"{path} path='{path}': no such file"]
    assert snapshot() == EMPTY


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "packs.csv"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO_CSV.read_bytes())

    out, _ = run(path, *DEMO_COMPANY)

    assert out == ["Imported packs: 8 new, 0 updated, 0 unchanged"]


# --- rows that clash with the database ------------------------------------------------------------
def test_a_pack_of_another_company_is_rejected():
    factories.pack("WE-NT6ZM", assign=False)  # Acme GmbH's
    before = snapshot()

    _, lines = rejected(DEMO_CSV, *DEMO_COMPANY, "--assign")

    assert lines == [
        "ilp-product-packs.csv[0] pack_id='WE-NT6ZM': belongs to another company (Acme GmbH (GA-000001))"
    ]
    assert snapshot() == before


def test_an_order_of_another_company_is_rejected():
    acme = factories.company()
    Order.objects.create(company=acme, number="ORD-250402")
    before = snapshot()

    _, lines = rejected(DEMO_CSV, *DEMO_COMPANY, "--accept-eula")

    owner = "belongs to another company (Acme GmbH (GA-000001))"
    assert lines == [f"ilp-product-packs.csv[{i}] order_number='ORD-250402': {owner}" for i in (1, 4, 5)]
    assert snapshot() == before  # in particular, Acme's EULA was not accepted


def test_a_subscription_key_of_another_company_is_rejected():
    SubscriptionKey.objects.create(company=factories.company(), key="SK-3M8P-22LA")
    before = snapshot()

    _, lines = rejected(DEMO_CSV, *DEMO_COMPANY)

    assert lines == [
        "ilp-product-packs.csv[2] subscription_key='SK-3M8P-22LA': "
        "belongs to another company (Acme GmbH (GA-000001))"
    ]
    assert snapshot() == before


def test_fewer_licenses_than_already_in_use_are_rejected(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    ProductPack.objects.filter(pack_id="WE-NT6ZM").update(used=50)
    before = snapshot()

    _, lines = rejected(packs_csv({0: {"licenses": "49"}, 1: {"comment": "a good change"}}))

    assert lines == ["packs.csv[0] licenses=49: fewer than the 50 licenses already in use"]
    assert snapshot() == before

    out, _ = run(packs_csv({0: {"licenses": "50"}}))  # exactly the licenses in use is fine
    assert out == ["Imported packs: 0 new, 1 updated, 7 unchanged"]
    assert ProductPack.objects.get(pack_id="WE-NT6ZM").total_licenses == 50


def test_changing_the_product_type_of_a_known_pack_is_rejected(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    before = snapshot()

    _, lines = rejected(packs_csv({4: {"product_type": "WE"}}))

    assert lines == ["packs.csv[4] product_type='WE': pack EMP-2PMH4 is already of type EMP"]
    assert snapshot() == before


def test_a_rejected_file_leaves_an_earlier_import_as_it_was(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY, "--assign")
    before = snapshot()

    _, lines = rejected(
        packs_csv({0: {"licenses": "500"}, 7: {"start_date": "someday"}}), "--assign", "--accept-eula"
    )

    assert lines == [f"packs.csv[7] start_date='someday': {NOT_A_DATE}"]
    assert snapshot() == before


# --- dry run ------------------------------------------------------------------------------------
def test_dry_run_reports_what_it_would_do_and_writes_nothing():
    out, err = run(DEMO_CSV, *DEMO_COMPANY, "--dry-run")

    assert out == ["Dry run, nothing written. Would import packs: 8 new, 0 updated, 0 unchanged"]
    assert err == ""
    assert snapshot() == EMPTY  # not even the new company


def test_dry_run_with_assign_reports_the_registration_and_writes_nothing():
    out, _ = run(DEMO_CSV, *DEMO_COMPANY, "--dry-run", "--assign", "--accept-eula")

    assert out == [
        "Dry run, nothing written. Would import packs: 8 new, 0 updated, 0 unchanged",
        f"Would assign to UMS ID {settings.PORTAL_UMS_NAME}; would register in the UMS: 8 new, 0 refreshed.",
    ]
    assert snapshot() == EMPTY  # no UMS ID, fingerprint, order, EULA or registered pack


def test_dry_run_after_an_import_reports_the_changes_and_keeps_the_database(packs_csv):
    run(DEMO_CSV, *DEMO_COMPANY)
    before = snapshot()
    path = packs_csv({0: {"licenses": "130"}}, extra=[dict(demo_rows()[0], pack_id="WE-NEW01")])

    out, _ = run(path, "--dry-run", "--assign")

    assert out == [
        "Dry run, nothing written. Would import packs: 1 new, 8 updated, 0 unchanged",
        f"Would assign to UMS ID {settings.PORTAL_UMS_NAME}; would register in the UMS: 9 new, 0 refreshed.",
        f"EULA not accepted for order(s) {', '.join(DEMO_ORDERS)}: their packs are not deployed until it "
        "is (--accept-eula).",
    ]
    assert snapshot() == before
