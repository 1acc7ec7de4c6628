"""Every write on the licensing side that has rules. The allocation keeps docs/DESIGN.md invariants 1 and 2:
the pack counter moves only by a conditional UPDATE (``used + k <= total``) and a partial unique index
keeps one active slot per unit ID and pack."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import F

from ald_portal import clock

from .contract import AllocationResult, Grant, LicenseErrorCode, LicenseServiceError, PackInfo
from .models import UNIT_ID_RE, LicenseSlot, PackStatus, ProductPack, UmsId

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
            LicenseSlot.objects.bulk_create(
                [LicenseSlot(pack=pack, unit_id=u, bound_at=now, ums_id=ums_pk) for u in granted_units]
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


def release_license(pack_id: str, unit_id: str) -> bool:
    """Free the slot of ``unit_id`` in ``pack_id`` (ILP "Remove hardware"). Returns False when the unit
    held no slot there: releasing twice is harmless."""
    with transaction.atomic():
        slot = (
            LicenseSlot.objects.select_for_update()
            .filter(pack__pack_id=pack_id, unit_id=unit_id, released_at__isnull=True)
            .first()
        )
        if slot is None:
            return False
        slot.released_at = clock.now()
        slot.save(update_fields=["released_at"])
        ProductPack.objects.filter(pk=slot.pack_id, used__gt=0).update(used=F("used") - 1)
        return True


def register_ums_id(company, fingerprint: str, name: str) -> UmsId:
    """Register a UMS installation in the License Portal; registering the same fingerprint twice
    returns the existing UMS ID."""
    ums, _ = UmsId.objects.get_or_create(fingerprint=fingerprint, defaults={"company": company, "name": name})
    return ums


def assign_packs(ums: UmsId, packs) -> int:
    """Assign packs to a UMS ID (ILP "+" on the UMS ID); returns how many changed."""
    ids = [p.pk for p in packs]
    return ProductPack.objects.filter(pk__in=ids).exclude(assigned_ums=ums).update(assigned_ums=ums)
