"""Every write on the licensing side that has rules. The allocation keeps docs/DESIGN.md invariants 1 and 2:
the pack counter moves only by a conditional UPDATE (``used + k <= total``) and a partial unique index
keeps one active slot per unit ID and pack.

The License Portal's pack operations (split, merge, remove hardware, comment, accept EULA) live here
too. Those that touch counters lock the pack rows first (``select_for_update``, in primary-key order),
then the slots, so they serialize with each other and with allocations without deadlocking. Their
refusals are ``ValidationError``s keyed by the field at fault, naming the value; they change nothing."""

import logging
import secrets
import string
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F

from ald_portal import clock
from ald_portal.bulk import insert_rows

from .contract import AllocationResult, Grant, LicenseErrorCode, LicenseServiceError, PackInfo
from .models import (
    UNIT_ID_RE,
    LicenseSlot,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    SizeChangeReason,
    UmsId,
)

log = logging.getLogger(__name__)


def pack_info(pack: ProductPack) -> PackInfo:
    status = pack.effective_status()
    eula_ok = pack.order_id is None or pack.order.eula_accepted
    return PackInfo(
        pack_id=pack.pack_id,
        product_name=pack.product_name,
        product_type=pack.product_type,
        service=pack.service,
        total=pack.total_licenses,
        used=pack.used,
        start_date=pack.start_date,
        expiry_date=pack.expiry_date,
        status=status,
        usable=status == PackStatus.ACTIVE and eula_ok,
        comment=pack.comment,
    )


def packs_for_ums(fingerprint: str, pack_ids=None) -> list[PackInfo]:
    """The packs assigned to a UMS ID, as the UMS sees them on refresh."""
    qs = ProductPack.objects.select_related("order").filter(assigned_ums__fingerprint=fingerprint)
    if pack_ids is not None:
        qs = qs.filter(pack_id__in=list(pack_ids))
    return [pack_info(p) for p in qs.order_by("created_at", "pk")]


def _load_pack(pack_id: str, ums_fingerprint: str | None) -> ProductPack:
    try:
        pack = ProductPack.objects.select_related("order", "assigned_ums").get(pack_id=pack_id)
    except ProductPack.DoesNotExist:
        raise LicenseServiceError(
            LicenseErrorCode.UNKNOWN_PACK, f"Pack {pack_id!r} does not exist."
        ) from None
    if ums_fingerprint is not None and (
        pack.assigned_ums is None or pack.assigned_ums.fingerprint != ums_fingerprint
    ):
        raise LicenseServiceError(
            LicenseErrorCode.PACK_NOT_ASSIGNED, f"Pack {pack_id} is not assigned to UMS ID {ums_fingerprint}."
        )
    status = pack.effective_status()
    if status == PackStatus.EXPIRED:
        raise LicenseServiceError(
            LicenseErrorCode.PACK_EXPIRED, f"Pack {pack_id} expired on {pack.expiry_date}."
        )
    if status == PackStatus.MERGED and pack.merged_into_id is not None:
        raise LicenseServiceError(
            LicenseErrorCode.PACK_NOT_ACTIVE, f"Pack {pack_id} is merged into {pack.merged_into.pack_id}."
        )
    if status != PackStatus.ACTIVE:
        raise LicenseServiceError(
            LicenseErrorCode.PACK_NOT_ACTIVE, f"Pack {pack_id} is {PackStatus(status).label.lower()}."
        )
    if pack.order_id is not None and not pack.order.eula_accepted:
        raise LicenseServiceError(
            LicenseErrorCode.EULA_NOT_ACCEPTED, f"The EULA of order {pack.order.number} is not accepted."
        )
    return pack


def _take(pack_pk: int, wanted: int) -> int:
    """Move the pack counter by up to ``wanted`` in one conditional UPDATE; return how many were taken.

    The WHERE clause is re-checked by the database under the row lock, so concurrent takers can never
    push ``used`` past ``total`` whatever they read before."""
    while wanted > 0:
        free = ProductPack.objects.filter(pk=pack_pk).values_list("total_licenses", "used").get()
        k = min(wanted, free[0] - free[1])
        if k <= 0:
            return 0
        taken = ProductPack.objects.filter(pk=pack_pk, used__lte=F("total_licenses") - k).update(
            used=F("used") + k
        )
        if taken:
            return k
    return 0


def request_licenses(pack_id: str, unit_ids, ums_fingerprint: str | None = None) -> AllocationResult:
    """Bind a license slot of ``pack_id`` to each unit ID, as far as free licenses reach.

    Asking again for a unit ID that already holds a slot of this pack returns that slot
    (``already_held``), never a second one. Unit IDs beyond the free licenses are denied with
    ``no_free_license``; the pack is used up, not skipped."""
    units = list(dict.fromkeys(unit_ids))
    bad = [u for u in units if not isinstance(u, str) or not UNIT_ID_RE.match(u)]
    if bad:
        raise LicenseServiceError(LicenseErrorCode.UNKNOWN_UNIT_ID, f"Malformed unit ID {bad[0]!r}.")
    for attempt in range(5):
        try:
            return _request_licenses_once(pack_id, units, ums_fingerprint)
        except IntegrityError:
            # Another request bound one of these unit IDs to this pack at the same moment; our
            # transaction (counter included) rolled back whole. Asking again finds its slot.
            log.info("concurrent request for pack %s, retrying (%d)", pack_id, attempt + 1)
    raise LicenseServiceError(LicenseErrorCode.NO_FREE_LICENSE, f"Pack {pack_id} is contended; try again.")


def _request_licenses_once(pack_id, units, ums_fingerprint) -> AllocationResult:
    now = clock.now()
    with transaction.atomic():
        pack = _load_pack(pack_id, ums_fingerprint)
        held = dict(
            LicenseSlot.objects.filter(pack=pack, unit_id__in=units, released_at__isnull=True).values_list(
                "unit_id", "bound_at"
            )
        )
        new_units = [u for u in units if u not in held]
        taken = _take(pack.pk, len(new_units))
        granted_units, denied_units = new_units[:taken], new_units[taken:]
        if granted_units:
            ums_pk = pack.assigned_ums_id if ums_fingerprint is not None else None
            insert_rows(
                LicenseSlot,
                ["pack_id", "unit_id", "bound_at", "ums_id"],
                [(pack.pk, u, now, ums_pk) for u in granted_units],
            )
        pack.refresh_from_db(fields=["used"])
        grants = [
            Grant(u, pack.pack_id, pack.expiry_date, held[u], already_held=True) for u in units if u in held
        ]
        grants += [Grant(u, pack.pack_id, pack.expiry_date, now) for u in granted_units]
        return AllocationResult(
            pack=pack_info(pack),
            granted=grants,
            denied={u: LicenseErrorCode.NO_FREE_LICENSE for u in denied_units},
        )


def release_license(pack_id: str, unit_id: str, actor: str = "UMS") -> bool:
    """Free the slot of ``unit_id`` in ``pack_id`` (ILP "Remove hardware", UMS "Delete Licenses").
    Returns False when the unit held no slot there: releasing twice is harmless. A pack merged into
    another one hands the request on to where its slots went. ``actor`` defaults to the UMS, the one
    caller that does not say who it is."""
    return bool(_release(pack_id, [unit_id], actor)[1])


def _follow_merges(pack_id: str) -> int | None:
    """The primary key of the pack that now holds ``pack_id``'s slots: itself, or the end of its
    merged-into chain. None for an unknown pack. Unlocked reads: a MERGED pack never changes again."""
    row = ProductPack.objects.filter(pack_id=pack_id).values_list("pk", "merged_into_id").first()
    if row is None:
        return None
    pk, following = row
    seen = {pk}
    while following is not None and following not in seen:
        seen.add(following)
        pk = following
        following = ProductPack.objects.filter(pk=pk).values_list("merged_into_id", flat=True).get()
    return pk


def _release(pack_id: str, units: list[str], actor: str) -> tuple[str | None, list[str]]:
    """Release the active slots of ``units`` in the pack that holds ``pack_id``'s slots; returns that
    pack's ID and the unit IDs released. Locks the one pack row, then its slots (the order every
    operation here keeps), and moves the counter by the number of slots actually released."""
    for _attempt in range(5):
        pk = _follow_merges(pack_id)
        if pk is None:
            return None, []
        with transaction.atomic():
            pack = ProductPack.objects.select_for_update().get(pk=pk)
            if pack.status == PackStatus.MERGED:
                continue  # merged while we waited for the lock: follow it to its target
            slots = list(
                LicenseSlot.objects.select_for_update()
                .filter(pack=pack, unit_id__in=units, released_at__isnull=True)
                .order_by("pk")
            )
            if slots:
                LicenseSlot.objects.filter(pk__in=[slot.pk for slot in slots]).update(
                    released_at=clock.now(), released_by=actor[:200]
                )
                n = len(slots)
                if not ProductPack.objects.filter(pk=pack.pk, used__gte=n).update(used=F("used") - n):
                    log.error("pack %s counted fewer used licenses than the %d slots released", pack, n)
            return pack.pack_id, sorted(slot.unit_id for slot in slots)
    raise ValidationError({"pack": f"Pack {pack_id} is being merged again and again; try again."})


def register_ums_id(company, fingerprint: str, name: str) -> UmsId:
    """Register a UMS installation in the License Portal; registering the same fingerprint twice
    returns the existing UMS ID."""
    ums, _ = UmsId.objects.get_or_create(fingerprint=fingerprint, defaults={"company": company, "name": name})
    return ums


def assign_packs(ums: UmsId, packs) -> int:
    """Assign packs to a UMS ID (ILP "+" on the UMS ID); returns how many changed."""
    ids = [p.pk for p in packs]
    return ProductPack.objects.filter(pk__in=ids).exclude(assigned_ums=ums).update(assigned_ums=ums)


# --- License Portal pack operations ------------------------------------------------------------------
PACK_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_pack_id(prefix: str) -> str:
    """A candidate pack ID: the product prefix, a dash and 5 random letters or digits."""
    return prefix + "-" + "".join(secrets.choice(PACK_ID_ALPHABET) for _ in range(5))


def _lock_packs(pack_ids, field: str) -> dict[str, ProductPack]:
    """Lock the packs' rows in primary-key order (so two operations on overlapping packs never wait
    for each other crosswise) and return them by pack ID, fresh from the database."""
    rows = ProductPack.objects.select_for_update().filter(pack_id__in=list(pack_ids)).order_by("pk")
    locked = {pack.pack_id: pack for pack in rows}
    missing = [p for p in pack_ids if p not in locked]
    if missing:
        raise ValidationError({field: f"Pack {missing[0]!r} does not exist."})
    return locked


def _refuse_retired(pack: ProductPack, field: str):
    """Merged and archived packs take part in no operation that changes licenses any more."""
    if pack.status == PackStatus.MERGED:
        into = ProductPack.objects.filter(pk=pack.merged_into_id).values_list("pack_id", flat=True).first()
        raise ValidationError(
            {field: f"Pack {pack.pack_id} was merged into {into or 'another pack'} and is not used any more."}
        )
    if pack.status == PackStatus.ARCHIVED:
        raise ValidationError({field: f"Pack {pack.pack_id} is archived."})


class SplitMode:
    COUNT = "count"
    EMPTY = "empty"
    CHOICES = [(COUNT, "A number of slots"), (EMPTY, "Only the empty slots (all free licenses)")]


def split_pack(pack_id: str, *, mode: str = SplitMode.COUNT, count=None, actor: str) -> ProductPack:
    """Split licenses off ``pack_id`` into a new pack (ILP *Split product pack*); returns the new pack.

    Rule: **only free licenses move.** A bound license stays in the pack it was issued from, because
    the device's license and the UMS's record of it name that pack; moving it would leave them naming
    a pack that no longer holds it. So ``mode="count"`` splits off ``count`` licenses, at most as many
    as are free, and ``mode="empty"`` splits off all free licenses. Either way the source keeps at
    least 1 license (ILP: split until 1 slot remains). One pack at a time.

    The new pack gets the same prefix and 5 new letters/digits, and the source's product, type,
    company, order (so the same EULA), subscription key, dates, status and UMS ID assignment; it
    starts with no bound licenses. Totals add up to the old total, used stays with the source. Both
    packs get a size-history row. (ICG packs split only in multiples of 10; there is no ICG product
    type yet.)"""
    if mode not in (SplitMode.COUNT, SplitMode.EMPTY):
        raise ValidationError(
            {"mode": f"Split mode {mode!r} is not one of {SplitMode.COUNT!r}, {SplitMode.EMPTY!r}."}
        )
    if mode == SplitMode.COUNT and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValidationError(
            {"count": f"Number of slots must be a whole number of at least 1, not {count!r}."}
        )
    with transaction.atomic():
        source = _lock_packs([pack_id], "pack")[pack_id]
        _refuse_retired(source, "pack")
        total, used = source.total_licenses, source.used
        free = total - used
        if mode == SplitMode.EMPTY:
            if free == 0:
                raise ValidationError(
                    {"mode": f"Pack {pack_id} has no empty slots: all {total} licenses are bound."}
                )
            if used == 0:
                raise ValidationError(
                    {
                        "mode": f"All {total} licenses of {pack_id} are empty: splitting them all off would "
                        f"leave it with none (a pack keeps at least 1). Split a number of slots instead "
                        f"(at most {total - 1})."
                    }
                )
            n = free
        else:
            n = count
            if n > free:
                raise ValidationError(
                    {
                        "count": f"Number of slots {n} is more than the {free} free licenses of {pack_id}; "
                        "only free licenses move in a split (bound ones stay with their devices)."
                    }
                )
            if n > total - 1:
                raise ValidationError(
                    {
                        "count": f"Number of slots {n} would leave {pack_id} with {max(total - n, 0)} "
                        f"licenses; a pack keeps at least 1, so at most {min(free, total - 1)} can be split off."
                    }
                )
        # Under the row lock this cannot miss; the condition keeps invariant 1 in the database anyway.
        if not ProductPack.objects.filter(pk=source.pk, used__lte=F("total_licenses") - n).update(
            total_licenses=F("total_licenses") - n
        ):
            raise ValidationError({"count": f"Pack {pack_id} has fewer than {n} free licenses now."})
        now = clock.now()
        new = _create_split_pack(source, n, actor, now)
        PackSizeChange.objects.create(
            pack=source,
            at=now,
            old_total=total,
            new_total=total - n,
            reason=SizeChangeReason.SPLIT,
            actor=actor,
            detail=f"{n} licenses split off into {new.pack_id}",
        )
    log.info("%s split %d licenses off %s into %s", actor, n, pack_id, new.pack_id)
    return new


def _create_split_pack(source: ProductPack, n: int, actor: str, now) -> ProductPack:
    prefix = source.pack_id.split("-", 1)[0]
    for _attempt in range(20):
        pack_id = new_pack_id(prefix)
        if ProductPack.objects.filter(pack_id=pack_id).exists():
            continue
        new = ProductPack(
            pack_id=pack_id,
            company_id=source.company_id,
            order_id=source.order_id,
            subscription_key_id=source.subscription_key_id,
            product_name=source.product_name,
            product_type=source.product_type,
            total_licenses=n,
            start_date=source.start_date,
            expiry_date=source.expiry_date,
            status=source.status,
            assigned_ums_id=source.assigned_ums_id,
            created_at=now,
        )
        try:
            with transaction.atomic():  # a savepoint: another split may take the same ID at this moment
                new.save(
                    size_change={
                        "reason": SizeChangeReason.SPLIT,
                        "actor": actor,
                        "detail": f"split off {source.pack_id}",
                    }
                )
        except IntegrityError:
            continue
        return new
    raise ValidationError({"pack": f"No free pack ID with prefix {prefix} found; try again."})


# (field compared, field shown, label): what packs must share to be merged
MERGE_MUST_MATCH = (
    ("company_id", "company", "company"),
    ("product_type", "product_type", "product type"),
    ("product_name", "product_name", "product"),
    ("expiry_date", "expiry_date", "expiry date"),
    ("subscription_key_id", "subscription_key", "subscription key"),
)


def _shown(pack: ProductPack, attr: str) -> str:
    value = getattr(pack, attr)
    if value is None:
        return "perpetual" if attr == "expiry_date" else "none"
    return str(value)


def merge_packs(target_id: str, source_ids, *, actor: str) -> ProductPack:
    """Merge ``source_ids`` into ``target_id`` (ILP *Merge*); returns the target.

    The packs must share company, product type, product, expiry date and subscription key; none may
    be merged or archived already; packs of different orders merge only when every order's EULA is
    accepted (else a merge would let licenses skip their EULA); no unit ID may hold a license in two
    of them. The sources' active slots move to the target, the target's total grows by the sources'
    totals, and each source becomes MERGED with total and used 0 and ``merged_into`` set: it is never
    used again (requests are refused; releases are handed on to the target)."""
    sources = list(dict.fromkeys(source_ids))
    if not sources:
        raise ValidationError({"packs": f"Choose at least one pack to merge into {target_id}."})
    if target_id in sources:
        raise ValidationError({"packs": f"Pack {target_id} cannot be merged into itself."})
    with transaction.atomic():
        locked = _lock_packs([target_id, *sources], "packs")
        target = locked[target_id]
        _refuse_retired(target, "pack")
        src = [locked[p] for p in sources]
        for pack in src:
            _refuse_retired(pack, "packs")
        for pack in src:
            for compared, shown, label in MERGE_MUST_MATCH:
                if getattr(pack, compared) != getattr(target, compared):
                    raise ValidationError(
                        {
                            "packs": f"Pack {pack.pack_id} differs in {label}: {_shown(pack, shown)}, but "
                            f"{target_id} has {_shown(target, shown)}."
                        }
                    )
        packs = [target, *src]
        orders = {p.order_id for p in packs}
        if len(orders) > 1:
            pending = Order.objects.filter(pk__in=orders - {None}, eula_accepted_at__isnull=True)
            for order in pending.order_by("number")[:1]:
                holder = next(p for p in packs if p.order_id == order.pk)
                raise ValidationError(
                    {
                        "packs": f"The EULA of order {order.number} (pack {holder.pack_id}) is not accepted; "
                        "packs of different orders merge only when every order's EULA is accepted."
                    }
                )
        pks = [p.pk for p in packs]
        active = LicenseSlot.objects.filter(pack_id__in=pks, released_at__isnull=True)
        twice = active.values("unit_id").annotate(n=Count("pk")).filter(n__gt=1).order_by("unit_id").first()
        if twice:
            holders = sorted(active.filter(unit_id=twice["unit_id"]).values_list("pack__pack_id", flat=True))
            raise ValidationError(
                {
                    "packs": f"Unit ID {twice['unit_id']} holds a license in {' and '.join(holders)}; "
                    "remove that hardware from one of them first."
                }
            )
        src_pks = [p.pk for p in src]
        # Nothing can bind or release a slot of these packs while we hold their rows.
        moved_per_pack = dict(
            LicenseSlot.objects.filter(pack_id__in=src_pks, released_at__isnull=True)
            .values_list("pack_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        n_moved = LicenseSlot.objects.filter(pack_id__in=src_pks, released_at__isnull=True).update(
            pack=target
        )
        added = sum(p.total_licenses for p in src)
        ProductPack.objects.filter(pk=target.pk).update(
            total_licenses=F("total_licenses") + added, used=F("used") + n_moved
        )
        ProductPack.objects.filter(pk__in=src_pks).update(
            status=PackStatus.MERGED, merged_into=target, total_licenses=0, used=0
        )
        now = clock.now()
        merged_in = ", ".join(
            f"{p.pack_id} ({p.total_licenses} licenses, {moved_per_pack.get(p.pk, 0)} bound)" for p in src
        )
        PackSizeChange.objects.bulk_create(
            [
                PackSizeChange(
                    pack=target,
                    at=now,
                    old_total=target.total_licenses,
                    new_total=target.total_licenses + added,
                    reason=SizeChangeReason.MERGE,
                    actor=actor,
                    detail=f"merged in: {merged_in}",
                )
            ]
            + [
                PackSizeChange(
                    pack=p,
                    at=now,
                    old_total=p.total_licenses,
                    new_total=0,
                    reason=SizeChangeReason.MERGE,
                    actor=actor,
                    detail=f"merged into {target_id}",
                )
                for p in src
            ]
        )
    log.info("%s merged %s into %s", actor, ", ".join(sources), target_id)
    target.refresh_from_db()
    return target


@dataclass(frozen=True)
class HardwareRemoval:
    pack_id: str  # the pack the slots were released from (the merge target for a merged pack)
    removed: list[str]
    not_held: list[str]  # unit IDs that held no slot there (already removed: harmless)


def remove_hardware(pack_id: str, unit_ids, *, actor: str, accept_terms: bool) -> HardwareRemoval:
    """ILP *Remove hardware*: free the slots bound to ``unit_ids`` in ``pack_id`` once the terms are
    accepted, recording who did it. Removing a unit that holds no slot (any more) is harmless."""
    units = list(dict.fromkeys(unit_ids or []))
    if not units:
        raise ValidationError({"unit_ids": f"Tick at least one unit ID to remove from {pack_id}."})
    bad = [u for u in units if not isinstance(u, str) or not UNIT_ID_RE.match(u)]
    if bad:
        raise ValidationError(
            {"unit_ids": f"Unit ID {bad[0]!r} is not 12 or 18 upper-case hexadecimal digits."}
        )
    if not accept_terms:
        raise ValidationError(
            {"accept_terms": f"Accept the terms and conditions to remove hardware from {pack_id}."}
        )
    if not actor:
        raise ValidationError({"actor": "Say who removes the hardware."})
    released_from, removed = _release(pack_id, units, actor)
    if released_from is None:
        raise ValidationError({"pack": f"Pack {pack_id!r} does not exist."})
    log.info("%s removed hardware %s from %s", actor, ", ".join(removed) or "(none)", released_from)
    return HardwareRemoval(released_from, removed, [u for u in units if u not in removed])


COMMENT_MAX = ProductPack._meta.get_field("comment").max_length


def set_pack_comment(pack_id: str, comment: str, *, actor: str) -> bool:
    """Set the pack's comment (shown in the UMS too). Returns whether it changed."""
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise ValidationError(
            {"comment": f"Comment is {len(comment)} characters long; at most {COMMENT_MAX} are allowed."}
        )
    packs = ProductPack.objects.filter(pack_id=pack_id)
    if not packs.exists():
        raise ValidationError({"pack": f"Pack {pack_id!r} does not exist."})
    changed = bool(packs.exclude(comment=comment).update(comment=comment))
    if changed:
        log.info("%s set the comment of %s", actor, pack_id)
    return changed


def accept_eula(pack_id: str, *, actor: str) -> tuple[Order, bool]:
    """Accept the EULA of the order ``pack_id`` belongs to: one acceptance covers every pack of that
    order. Returns the order and whether it was accepted now; accepting again keeps the first record."""
    actor = (actor or "").strip()
    if not actor:
        raise ValidationError({"actor": "Say who accepts the EULA."})
    with transaction.atomic():
        order_pk = ProductPack.objects.filter(pack_id=pack_id).values_list("order_id", flat=True).first()
        if order_pk is None:
            if not ProductPack.objects.filter(pack_id=pack_id).exists():
                raise ValidationError({"pack": f"Pack {pack_id!r} does not exist."})
            raise ValidationError(
                {"pack": f"Pack {pack_id} belongs to no order: there is no EULA to accept."}
            )
        order = Order.objects.select_for_update().get(pk=order_pk)
        if order.eula_accepted:
            return order, False
        order.eula_accepted_by, order.eula_accepted_at = actor[:200], clock.now()
        order.save(update_fields=["eula_accepted_by", "eula_accepted_at"])
    log.info("%s accepted the EULA of order %s (from pack %s)", actor, order.number, pack_id)
    return order, True


def merge_candidates(pack: ProductPack):
    """The packs that may be merged into ``pack``: same company, product type, product, expiry date and
    subscription key, neither merged nor archived (what ``merge_packs`` accepts, apart from orders,
    EULAs and unit IDs, which it checks under lock)."""
    return (
        ProductPack.objects.filter(
            **{compared: getattr(pack, compared) for compared, _, _ in MERGE_MUST_MATCH}
        )
        .exclude(pk=pack.pk)
        .exclude(status__in=[PackStatus.MERGED, PackStatus.ARCHIVED])
        .order_by("pack_id", "pk")
    )


def reconcile_pack_counters() -> dict[str, tuple[int, int]]:
    """Recompute every pack's used counter from its active slots; returns {pack ID: (was, is)} for
    the packs whose counter had drifted (the slots are the truth)."""
    from django.db.models import Count

    with transaction.atomic():
        packs = list(
            ProductPack.objects.select_for_update().order_by("pk").values_list("pk", "pack_id", "used")
        )
        counts = dict(
            LicenseSlot.objects.filter(released_at__isnull=True)
            .values("pack_id")
            .annotate(n=Count("pk"))
            .values_list("pack_id", "n")
        )
        drift = {}
        for pk, pack_id, used in packs:
            actual = counts.get(pk, 0)
            if used != actual:
                ProductPack.objects.filter(pk=pk).update(used=actual)
                drift[pack_id] = (used, actual)
    if drift:
        log.warning("pack counters corrected from their slots: %s", drift)
    return drift


def active_slots(ums_fingerprint: str, pack_ids=None) -> list[tuple[str, str]]:
    """(pack ID, unit ID) of every active slot in the packs assigned to a UMS ID (or in ``pack_ids``
    of them)."""
    qs = LicenseSlot.objects.filter(released_at__isnull=True, pack__assigned_ums__fingerprint=ums_fingerprint)
    if pack_ids is not None:
        qs = qs.filter(pack__pack_id__in=list(pack_ids))
    return list(qs.order_by("pack__pack_id", "unit_id").values_list("pack__pack_id", "unit_id"))


def merged_pack_map() -> dict[str, str]:
    """{pack ID: the pack it was merged into, following merges of merges}: slots moved there."""
    direct = dict(
        ProductPack.objects.filter(merged_into__isnull=False).values_list("pack_id", "merged_into__pack_id")
    )
    resolved = {}
    for pack_id in direct:
        target, seen = direct[pack_id], {pack_id}
        while target in direct and target not in seen:
            seen.add(target)
            target = direct[target]
        resolved[pack_id] = target
    return resolved
