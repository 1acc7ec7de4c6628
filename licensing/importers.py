"""Import Product Packs from the License Portal's pack list (CSV, one row per pack)."""

import csv
import datetime
import io
import re
from pathlib import Path

from django.db import transaction

from ald_portal import clock
from ald_portal.importing import ImportRejected, ImportReport, RecordError

from .models import (
    PACK_ID_RE,
    Company,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    ProductType,
    SizeChangeReason,
    SubscriptionKey,
    UmsId,
)

COLUMNS = (
    "pack_id",
    "product",
    "product_type",
    "licenses",
    "start_date",
    "expiry_date",
    "subscription_key",
    "order_number",
    "comment",
)
REQUIRED = ("pack_id", "product", "product_type", "licenses", "start_date")
# column -> (model, field) whose max_length the value must fit
LENGTHS = {
    "product": (ProductPack, "product_name"),
    "subscription_key": (SubscriptionKey, "key"),
    "order_number": (Order, "number"),
    "comment": (ProductPack, "comment"),
}
MAX_LICENSES = 2147483647  # the largest count every supported database holds
ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COUNT_RE = re.compile(r"[0-9]+")


def _date(value):
    """YYYY-MM-DD only: date.fromisoformat alone would also take 20241201 or 2024-W48-1."""
    if not ISO_DATE_RE.fullmatch(value):
        raise ValueError(value)
    return datetime.date.fromisoformat(value)


def read_pack_rows(path, errors):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        errors.append(RecordError(str(path), None, "path", str(path), "no such file"))
        return path.name, []
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        errors.append(RecordError(path.name, None, "file", path.name, f"not a UTF-8 CSV file: {exc}"))
        return path.name, []
    reader = csv.DictReader(io.StringIO(text), strict=True)
    header, rows, last_line = None, [], 0
    try:
        header = reader.fieldnames or []
        last_line = reader.line_num
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            errors.append(
                RecordError(
                    path.name, None, "header", ",".join(header), f"missing column(s): {', '.join(missing)}"
                )
            )
            return path.name, []
        for row in reader:
            rows.append(row)
            last_line = reader.line_num
    except csv.Error as exc:  # an unterminated quote, a stray quote inside a field...
        index = None if header is None else len(rows)  # None: the header itself
        errors.append(
            RecordError(path.name, index, "file", path.name, f"not valid CSV at line {last_line + 1}: {exc}")
        )
        return path.name, []
    return path.name, rows


def validate_packs(name, rows, errors):
    packs, seen = [], {}
    for i, row in enumerate(rows):
        before = len(errors)
        if None in row:  # more cells than columns
            errors.append(RecordError(name, i, "row", row[None], "more cells than the header has columns"))
            continue
        # PostgreSQL cannot store a NUL in text (and SQLite would keep it silently): reject it by name.
        for c in COLUMNS:
            if "\x00" in (row.get(c) or ""):
                errors.append(RecordError(name, i, c, row.get(c), "contains a NUL character"))
        if len(errors) > before:
            continue
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        for c in REQUIRED:
            if not values[c]:
                errors.append(RecordError(name, i, c, row.get(c), "missing"))
        if len(errors) > before:
            continue
        if not PACK_ID_RE.match(values["pack_id"]):
            errors.append(RecordError(name, i, "pack_id", values["pack_id"], "not of the form PREFIX-XXXXX"))
        elif values["pack_id"] in seen:
            errors.append(
                RecordError(
                    name,
                    i,
                    "pack_id",
                    values["pack_id"],
                    f"duplicate pack ID (also row {seen[values['pack_id']]})",
                )
            )
        else:
            seen[values["pack_id"]] = i
        if values["product_type"] not in ProductType.values:
            errors.append(
                RecordError(
                    name,
                    i,
                    "product_type",
                    values["product_type"],
                    f"unknown product type (one of {', '.join(ProductType.values)})",
                )
            )
        count = values["licenses"]
        total = 0
        if COUNT_RE.fullmatch(count):  # int() alone would take "1_000", "+5" or "١٢"
            total = int(count) if len(count) <= 12 else MAX_LICENSES + 1
        if total < 1:
            errors.append(
                RecordError(name, i, "licenses", values["licenses"], "must be a whole number of at least 1")
            )
            total = None
        elif total > MAX_LICENSES:
            errors.append(RecordError(name, i, "licenses", values["licenses"], f"more than {MAX_LICENSES}"))
            total = None
        for c, (model, field) in LENGTHS.items():
            limit = model._meta.get_field(field).max_length
            if len(values[c]) > limit:
                errors.append(RecordError(name, i, c, values[c], f"longer than {limit} characters"))
        dates = {}
        for c in ("start_date", "expiry_date"):
            if values[c]:
                try:
                    dates[c] = _date(values[c])
                except ValueError:
                    errors.append(RecordError(name, i, c, values[c], "not a date of the form YYYY-MM-DD"))
            else:
                dates[c] = None
        if (
            dates.get("start_date")
            and dates.get("expiry_date")
            and dates["expiry_date"] < dates["start_date"]
        ):
            errors.append(RecordError(name, i, "expiry_date", values["expiry_date"], "before start_date"))
        if len(errors) > before:
            continue
        packs.append(
            {
                "index": i,
                "pack_id": values["pack_id"],
                "product_name": values["product"],
                "product_type": values["product_type"],
                "total_licenses": total,
                "start_date": dates["start_date"],
                "expiry_date": dates["expiry_date"],
                "subscription_key": values["subscription_key"],
                "order_number": values["order_number"],
                "comment": values["comment"],
            }
        )
    return packs


def _check_owners(name, packs, company, errors):
    """An order or subscription key already known belongs to one company; a pack of another company's
    order would show (and, with --accept-eula, accept) that company's order."""
    for column, model, field in (
        ("order_number", Order, "number"),
        ("subscription_key", SubscriptionKey, "key"),
    ):
        wanted = {p[column] for p in packs if p[column]}
        owners = {
            getattr(obj, field): obj.company
            for obj in model.objects.select_related("company").filter(**{f"{field}__in": wanted})
        }
        for p in packs:
            owner = owners.get(p[column])
            if owner is not None and owner.pk != company.pk:
                errors.append(
                    RecordError(name, p["index"], column, p[column], f"belongs to another company ({owner})")
                )


def _portal_sized(packs) -> set:
    """Pack IDs whose size the License Portal itself changed (a split or a merge): after that the
    portal, not the pack list, is the source of truth for their size."""
    return set(
        PackSizeChange.objects.filter(
            pack__in=packs, reason__in=[SizeChangeReason.SPLIT, SizeChangeReason.MERGE]
        ).values_list("pack__pack_id", flat=True)
    )


def import_packs(
    path, company: Company, dry_run=False, accept_eula_by: str = "", assign_to: UmsId | None = None
):
    """Validate the whole file, then write it in one transaction. Returns (report, packs); the
    report's ``notes`` are lines to show besides its summary.

    What the License Portal did to a pack wins over the file: a MERGED pack is never changed (its row
    is skipped), and a pack split or merged in the portal keeps the portal's size (the file's other
    values still apply). Any other pack takes the file's size if that is at least its ``used``, which
    is checked on the locked row and never written (it moves only by the services' UPDATEs)."""
    errors = []
    name, rows = read_pack_rows(path, errors)
    packs = validate_packs(name, rows, errors) if not errors else []
    report = ImportReport(dry_run=dry_run)
    report.notes = []
    created = updated = 0
    result = []
    with transaction.atomic():
        # Lock the known packs (in primary-key order, like the services): a split, merge or license
        # request waits for the import, and the checks below see the counters the writes will meet.
        existing = {
            p.pack_id: p
            for p in ProductPack.objects.select_for_update()
            .filter(pack_id__in=[p["pack_id"] for p in packs])
            .order_by("pk")
        }
        portal_sized = _portal_sized(list(existing.values())) if existing else set()
        for p in packs:
            old = existing.get(p["pack_id"])
            if old is None:
                continue
            if old.company_id != company.pk:
                errors.append(
                    RecordError(
                        name,
                        p["index"],
                        "pack_id",
                        p["pack_id"],
                        f"belongs to another company ({old.company})",
                    )
                )
            elif old.status == PackStatus.MERGED:
                into = old.merged_into.pack_id if old.merged_into_id else "another pack"
                p["skip"] = True
                report.notes.append(
                    f"{name}[{p['index']}] {old.pack_id}: skipped, merged into {into} in the License "
                    "Portal (an import does not change a merged pack)"
                )
            elif p["product_type"] != old.product_type:
                errors.append(
                    RecordError(
                        name,
                        p["index"],
                        "product_type",
                        p["product_type"],
                        f"pack {old.pack_id} is already of type {old.product_type}",
                    )
                )
            elif old.pack_id in portal_sized:
                if p["total_licenses"] != old.total_licenses:
                    report.notes.append(
                        f"{name}[{p['index']}] {old.pack_id}: kept the License Portal's "
                        f"{old.total_licenses} licenses, not the file's {p['total_licenses']} (the pack "
                        "was split or merged in the License Portal; its size stands)"
                    )
                p["total_licenses"] = old.total_licenses
            elif p["total_licenses"] < old.used:
                errors.append(
                    RecordError(
                        name,
                        p["index"],
                        "licenses",
                        p["total_licenses"],
                        f"fewer than the {old.used} licenses already in use",
                    )
                )
        _check_owners(name, packs, company, errors)
        if errors:
            # file problems first, then row by row (the checks against the database ran last)
            raise ImportRejected(sorted(errors, key=lambda e: -1 if e.index is None else e.index))
        for p in packs:
            old = existing.get(p["pack_id"])
            if p.get("skip"):
                result.append(old)
                continue
            order = None
            if p["order_number"]:
                order, _ = Order.objects.get_or_create(
                    number=p["order_number"], defaults={"company": company}
                )
                if accept_eula_by and not order.eula_accepted:
                    order.eula_accepted_by, order.eula_accepted_at = accept_eula_by, clock.now()
                    order.save(update_fields=["eula_accepted_by", "eula_accepted_at"])
            key = None
            if p["subscription_key"]:
                key, _ = SubscriptionKey.objects.get_or_create(
                    key=p["subscription_key"], defaults={"company": company}
                )
            values = {
                "company": company,
                "order": order,
                "subscription_key": key,
                "product_name": p["product_name"],
                "product_type": p["product_type"],
                "total_licenses": p["total_licenses"],
                "start_date": p["start_date"],
                "expiry_date": p["expiry_date"],
                "comment": p["comment"],
            }
            if old is None:
                pack = ProductPack(pack_id=p["pack_id"], **values)
                if assign_to is not None:
                    pack.assigned_ums = assign_to
                pack.save(size_change={"reason": SizeChangeReason.IMPORT, "detail": f"imported from {name}"})
                created += 1
            else:
                pack = old
                changed = [k for k, v in values.items() if getattr(pack, k) != v]
                if assign_to is not None and pack.assigned_ums_id != assign_to.pk:
                    pack.assigned_ums = assign_to
                    changed.append("assigned_ums")
                if changed:
                    if "total_licenses" in changed:
                        PackSizeChange.objects.create(
                            pack=pack,
                            old_total=pack.total_licenses,
                            new_total=values["total_licenses"],
                            reason=SizeChangeReason.IMPORT,
                            detail=f"imported from {name}",
                        )
                    for k in changed:
                        if k in values:
                            setattr(pack, k, values[k])
                    # only the fields the file changed: never used, status or merged_into
                    pack.save(update_fields=[*changed, "service"])
                    updated += 1
            result.append(pack)
        report.created["packs"], report.updated["packs"] = created, updated
        report.unchanged["packs"] = len(packs) - created - updated
        if dry_run:
            transaction.set_rollback(True)
    return report, result
