"""Every write on the licensing side that has rules. The allocation keeps docs/DESIGN.md invariants 1 and 2:
the pack counter moves only by a conditional UPDATE (``used + k <= total``) and a partial unique index
keeps one active slot per unit ID and pack.

The License Portal's pack operations (split, merge, remove hardware, comment, accept EULA) live here
too. Those that touch counters lock the pack rows first (``select_for_update``, in primary-key order),
then the slots, so they serialize with each other and with allocations without deadlocking. Their
refusals are ``ValidationError``s keyed by the field at fault, naming the value; they change nothing."""

import datetime
import hashlib
import logging
import secrets
import string
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F

from ald_portal import clock
from ald_portal.bulk import insert_rows
from ald_portal.lookups import Values

from .certificates import certificate_subject, fingerprint_of, load_certificate, signature_valid
from .contract import (
    MAX_CLOCK_SKEW,
    AllocationResult,
    Grant,
    LicenseErrorCode,
    LicenseServiceError,
    PackInfo,
    signing_payload,
)
from .models import (
    UNIT_ID_RE,
    AldToken,
    LicensePortalAction,
    LicenseSlot,
    Order,
    PackSizeChange,
    PackStatus,
    PortalAction,
    ProductPack,
    SizeChangeReason,
    SubscriptionKey,
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


@dataclass(frozen=True)
class Caller:
    """Who asks the licensing service: a UMS by its UMS ID (the packs assigned to it), or a UMS holding
    a subscription key's ALD token (the packs of that key). Exactly one of the two is set."""

    ums_fingerprint: str | None = None
    subscription_key_id: int | None = None
    ums_pk: int | None = None
    label: str = ""

    @property
    def scope(self) -> str:
        """The caller's name for idempotency keys: stable across *Change UMS ID* and token reissue."""
        if self.subscription_key_id is not None:
            return f"token:{self.subscription_key_id}"
        return f"ums:{self.ums_pk or self.ums_fingerprint}"

    def packs(self):
        if self.subscription_key_id is not None:
            return ProductPack.objects.filter(subscription_key_id=self.subscription_key_id)
        return ProductPack.objects.filter(assigned_ums__fingerprint=self.ums_fingerprint)

    def holds(self, pack: ProductPack) -> bool:
        if self.subscription_key_id is not None:
            return pack.subscription_key_id == self.subscription_key_id
        return pack.assigned_ums is not None and pack.assigned_ums.fingerprint == self.ums_fingerprint

    def __str__(self):
        return self.label or self.scope


def _caller(ums_fingerprint=None, subscription_key_id=None) -> Caller | None:
    if ums_fingerprint is None and subscription_key_id is None:
        return None
    if subscription_key_id is not None:
        return Caller(
            subscription_key_id=subscription_key_id, label=f"subscription key {subscription_key_id}"
        )
    return Caller(ums_fingerprint=ums_fingerprint, label=f"UMS ID {ums_fingerprint}")


def packs_for_ums(fingerprint: str | None, pack_ids=None, *, subscription_key_id=None) -> list[PackInfo]:
    """The packs assigned to a UMS ID (or, for an ALD token, of its subscription key), as the UMS sees
    them on refresh. Merged and archived packs are included: the UMS learns they are gone."""
    qs = _caller(fingerprint, subscription_key_id).packs().select_related("order")
    if pack_ids is not None:
        qs = qs.filter(pack_id__in=list(pack_ids))
    return [pack_info(p) for p in qs.order_by("created_at", "pk")]


def authorize_pack(pack_id: str, caller: Caller) -> ProductPack:
    """The pack, if ``caller`` may use it; otherwise unknown_pack or pack_not_assigned."""
    pack = ProductPack.objects.select_related("assigned_ums").filter(pack_id=pack_id).first()
    if pack is None:
        raise LicenseServiceError(LicenseErrorCode.UNKNOWN_PACK, f"Pack {pack_id!r} does not exist.")
    if not caller.holds(pack):
        raise LicenseServiceError(
            LicenseErrorCode.PACK_NOT_ASSIGNED, f"Pack {pack_id} is not assigned to {caller}."
        )
    return pack


def _load_pack(pack_id: str, caller: Caller | None, lock=False) -> ProductPack:
    packs = ProductPack.objects.select_related("order", "assigned_ums")
    if lock:
        packs = packs.select_for_update(of=("self",))
    try:
        pack = packs.get(pack_id=pack_id)
    except ProductPack.DoesNotExist:
        raise LicenseServiceError(
            LicenseErrorCode.UNKNOWN_PACK, f"Pack {pack_id!r} does not exist."
        ) from None
    if caller is not None and not caller.holds(pack):
        raise LicenseServiceError(
            LicenseErrorCode.PACK_NOT_ASSIGNED, f"Pack {pack_id} is not assigned to {caller}."
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


def request_licenses(
    pack_id: str, unit_ids, ums_fingerprint: str | None = None, *, subscription_key_id: int | None = None
) -> AllocationResult:
    """Bind a license slot of ``pack_id`` to each unit ID, as far as free licenses reach.

    Asking again for a unit ID that already holds a slot of this pack returns that slot
    (``already_held``), never a second one. Unit IDs beyond the free licenses are denied with
    ``no_free_license``; the pack is used up, not skipped."""
    bad = [u for u in unit_ids if not isinstance(u, str) or not UNIT_ID_RE.match(u)]
    if bad:
        raise LicenseServiceError(
            LicenseErrorCode.UNKNOWN_UNIT_ID,
            f"Unit ID {bad[0]!r} is not 12 or 18 upper-case hexadecimal digits.",
        )
    units = list(dict.fromkeys(unit_ids))
    caller = _caller(ums_fingerprint, subscription_key_id)
    for attempt in range(5):
        try:
            return _request_licenses_once(pack_id, units, caller)
        except IntegrityError:
            # Another request bound one of these unit IDs to this pack at the same moment; our
            # transaction (counter included) rolled back whole. Asking again finds its slot.
            log.info("concurrent request for pack %s, retrying (%d)", pack_id, attempt + 1)
    raise LicenseServiceError(LicenseErrorCode.NO_FREE_LICENSE, f"Pack {pack_id} is contended; try again.")


def _request_licenses_once(pack_id, units, caller) -> AllocationResult:
    now = clock.now()
    with transaction.atomic():
        # The pack's row is locked for the request (as a release locks it): requests for one pack
        # take their turns instead of binding the same unit IDs at once and failing on the unique
        # index (overlapping requests were refused as "contended" with thousands of licenses free).
        pack = _load_pack(pack_id, caller, lock=True)
        held = dict(
            LicenseSlot.objects.filter(
                pack=pack, unit_id__among=Values(units), released_at__isnull=True
            ).values_list("unit_id", "bound_at")
        )
        new_units = [u for u in units if u not in held]
        taken = _take(pack.pk, len(new_units))
        granted_units, denied_units = new_units[:taken], new_units[taken:]
        if granted_units:
            ums_pk = pack.assigned_ums_id if caller is not None and caller.ums_fingerprint else None
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


def _release(pack_id: str, units: list[str], actor: str, on_released=None) -> tuple[str | None, list[str]]:
    """Release the active slots of ``units`` in the pack that holds ``pack_id``'s slots; returns that
    pack's ID and the unit IDs released. Locks the one pack row, then its slots (the order every
    operation here keeps), and moves the counter by the number of slots actually released.
    ``on_released(pack, unit_ids)`` runs inside the transaction when slots were released."""
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
                if on_released is not None:
                    on_released(pack, sorted(slot.unit_id for slot in slots))
            return pack.pack_id, sorted(slot.unit_id for slot in slots)
    raise ValidationError({"pack": f"Pack {pack_id} is being merged again and again; try again."})


def register_ums_id(
    company, fingerprint: str, name: str, certificate_pem: str = "", actor: str = ""
) -> UmsId:
    """Register a UMS installation in the License Portal; registering the same fingerprint twice
    returns the existing UMS ID (and fills in its certificate if it had none)."""
    with transaction.atomic():
        ums, created = UmsId.objects.get_or_create(
            fingerprint=fingerprint,
            defaults={"company": company, "name": name, "certificate_pem": certificate_pem},
        )
        if not created and certificate_pem and not ums.certificate_pem:
            ums.certificate_pem = certificate_pem
            ums.save(update_fields=["certificate_pem"])
        if created:
            _portal_event(
                actor or "UMS",
                PortalAction.REGISTER,
                f"UMS ID {name} ({fingerprint}) registered",
                ums=ums,
            )
    return ums


def register_ums_certificate(company, certificate_pem: str, name: str, *, actor: str) -> UmsId:
    """ILP *Register UMS ID*: upload the certificate a UMS exported, give it a name."""
    name = ums_id_name(name)
    cert = load_certificate(certificate_pem)
    fingerprint = fingerprint_of(cert)
    if UmsId.objects.filter(fingerprint=fingerprint).exists():
        raise ValidationError({"certificate": f"UMS ID {fingerprint} is registered already."})
    return register_ums_id(company, fingerprint, name, certificate_pem.strip(), actor=actor)


def _portal_event(actor, action, message, ums=None, subscription_key=None, packs=()):
    """An action of the UMS IDs or subscription keys pages, in the License Portal's action log."""
    LicensePortalAction.objects.create(
        actor=(actor or "")[:200],
        action=action,
        related_packs=LicensePortalAction.packs_field(list(packs)),
        subscription_key=subscription_key.key if subscription_key else "",
        detail=message,
    )
    log.info("%s: %s", actor, message)


def ums_id_name(name) -> str:
    """A UMS ID name as given in the License Portal: trimmed, not empty, at most 200 characters."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "The UMS ID name must not be empty."})
    if len(name) > 200:
        raise ValidationError(
            {"name": f"The UMS ID name is {len(name)} characters long; at most 200 are allowed."}
        )
    return name


def rename_ums_id(ums: UmsId, name: str, *, actor: str) -> bool:
    name = ums_id_name(name)
    if name == ums.name:
        return False
    with transaction.atomic():
        old = ums.name
        UmsId.objects.filter(pk=ums.pk).update(name=name)
        ums.name = name
        _portal_event(actor, PortalAction.RENAME, f"UMS ID {old!r} renamed to {name!r}", ums=ums)
    return True


def change_ums_id(ums: UmsId, certificate_pem: str, *, actor: str) -> UmsId:
    """ILP *Change UMS ID*: the UMS has a new key pair (a migration to another server, a new
    installation); its new certificate replaces the old one. Pack assignments stay, and so do the
    slots bound through it: the packs belong to the same UMS ID row."""
    cert = load_certificate(certificate_pem)
    fingerprint = fingerprint_of(cert)
    if fingerprint == ums.fingerprint:
        raise ValidationError(
            {"certificate": f"This is the current certificate of {ums.name} ({fingerprint})."}
        )
    if UmsId.objects.filter(fingerprint=fingerprint).exclude(pk=ums.pk).exists():
        raise ValidationError(
            {"certificate": f"UMS ID {fingerprint} is registered already as another UMS ID."}
        )
    with transaction.atomic():
        old = ums.fingerprint
        UmsId.objects.filter(pk=ums.pk).update(
            fingerprint=fingerprint, certificate_pem=certificate_pem.strip()
        )
        ums.fingerprint, ums.certificate_pem = fingerprint, certificate_pem.strip()
        kept = ums.packs.count()
        _portal_event(
            actor,
            PortalAction.CHANGE_UMS_ID,
            f"UMS ID {ums.name} changed from {old} to {fingerprint} ({certificate_subject(cert)}); "
            f"{kept} pack assignment(s) kept",
            ums=ums,
        )
    return ums


def set_auto_assign(ums: UmsId, on: bool, *, actor: str) -> bool:
    changed = UmsId.objects.filter(pk=ums.pk).exclude(auto_assign=on).update(auto_assign=on)
    if changed:
        ums.auto_assign = on
        _portal_event(
            actor,
            PortalAction.AUTO_ASSIGN,
            f"Auto assign {'on' if on else 'off'} for UMS ID {ums.name}: future Product Packs "
            + ("are assigned to it" if on else "are not assigned automatically"),
            ums=ums,
        )
    return bool(changed)


def assign_packs(ums: UmsId, packs, actor: str = "") -> int:
    """Assign packs to a UMS ID (ILP "+" on the UMS ID); returns how many changed. Packs of another
    company are refused."""
    packs = list(packs)
    retired = [p for p in packs if p.status in (PackStatus.ARCHIVED, PackStatus.MERGED)]
    if retired:
        raise ValidationError(
            {
                "packs": f"Pack {retired[0].pack_id} is {retired[0].get_status_display().lower()} and cannot be assigned."
            }
        )
    foreign = [p.pack_id for p in packs if p.company_id != ums.company_id]
    if foreign:
        raise ValidationError(
            {"packs": f"Pack {foreign[0]} belongs to another company than UMS ID {ums.name}."}
        )
    ids = [p.pk for p in packs]
    with transaction.atomic():
        todo = list(
            ProductPack.objects.filter(pk__in=ids)
            .exclude(assigned_ums=ums)
            .order_by("pack_id")
            .values_list("pack_id", flat=True)
        )
        n = ProductPack.objects.filter(pk__in=ids).exclude(assigned_ums=ums).update(assigned_ums=ums)
        if n and actor:
            _portal_event(
                actor,
                PortalAction.ASSIGN,
                f"Assigned {', '.join(todo)} to UMS ID {ums.name}",
                ums=ums,
                packs=todo,
            )
    return n


def unassign_packs(ums: UmsId, packs, *, actor: str) -> int:
    """Unassign packs from a UMS ID. Licenses already bound stay bound; the UMS cannot take new ones."""
    ids = [p.pk for p in packs]
    with transaction.atomic():
        todo = list(
            ProductPack.objects.filter(pk__in=ids, assigned_ums=ums)
            .order_by("pack_id")
            .values_list("pack_id", flat=True)
        )
        n = ProductPack.objects.filter(pk__in=ids, assigned_ums=ums).update(assigned_ums=None)
        if n:
            _portal_event(
                actor,
                PortalAction.UNASSIGN,
                f"Unassigned {', '.join(todo)} from UMS ID {ums.name}",
                ums=ums,
                packs=todo,
            )
    return n


# --- credentials: signed UMS ID requests and ALD tokens ------------------------------------------------
ALD_TOKEN_PREFIX = "ald_"


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so one SHA-256 is enough: there is nothing to guess from the hash.
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_token(key: SubscriptionKey, actor: str) -> tuple[AldToken, str]:
    token = ALD_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AldToken.objects.create(
        subscription_key=key, token_hash=_token_hash(token), hint=token[:10], created_by=actor[:200]
    )
    return row, token


def generate_ald_token(key: SubscriptionKey, *, actor: str) -> tuple[AldToken, str]:
    """ILP *Generate ALD Token*: returns the row and the token, which is shown this once and stored
    only as a hash. A key has at most one current token; to get another, delete it."""
    with transaction.atomic():
        SubscriptionKey.objects.select_for_update().get(pk=key.pk)
        if AldToken.objects.filter(subscription_key=key, revoked_at__isnull=True).exists():
            raise ValidationError(
                {
                    "subscription_key": f"Subscription key {key.key} has an ALD token already; delete it to get a new one."
                }
            )
        row, token = _issue_token(key, actor)
        _portal_event(
            actor,
            PortalAction.TOKEN_GENERATED,
            f"ALD token {row.hint}… generated for {key.key}",
            subscription_key=key,
        )
    return row, token


def delete_ald_token(key: SubscriptionKey, *, actor: str) -> tuple[AldToken, str]:
    """ILP *Delete ALD Token*: the current token stops working at once and a new one is issued
    (returned with its row, shown once)."""
    with transaction.atomic():
        SubscriptionKey.objects.select_for_update().get(pk=key.pk)
        current = AldToken.objects.filter(subscription_key=key, revoked_at__isnull=True).first()
        if current is None:
            raise ValidationError(
                {"subscription_key": f"Subscription key {key.key} has no ALD token to delete."}
            )
        AldToken.objects.filter(pk=current.pk).update(revoked_at=clock.now(), revoked_by=actor[:200])
        row, token = _issue_token(key, actor)
        _portal_event(
            actor,
            PortalAction.TOKEN_DELETED,
            f"ALD token {current.hint}… of {key.key} deleted; new token {row.hint}… issued",
            subscription_key=key,
        )
    return row, token


def authenticate_token(token: str) -> Caller:
    """The caller an ALD token stands for; bad_credential for an unknown token, revoked_credential
    for a deleted one."""
    row = (
        AldToken.objects.select_related("subscription_key")
        .filter(token_hash=_token_hash(token or ""))
        .first()
    )
    if row is None:
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL, "The ALD token is not known to the licensing service."
        )
    if row.revoked_at is not None:
        raise LicenseServiceError(
            LicenseErrorCode.REVOKED_CREDENTIAL,
            f"The ALD token {row.hint}… was deleted on {row.revoked_at:%Y-%m-%d %H:%M}; register the new token.",
        )
    AldToken.objects.filter(pk=row.pk).update(last_used_at=clock.now())
    return Caller(
        subscription_key_id=row.subscription_key_id,
        label=f"the ALD token of subscription key {row.subscription_key.key}",
    )


def ums_caller(fingerprint: str) -> Caller:
    """The caller a UMS ID stands for inside this installation (the in-process client: same
    installation, no signature); bad_credential when the License Portal does not know it."""
    ums = UmsId.objects.filter(fingerprint=fingerprint or "").values_list("pk", flat=True).first()
    if ums is None:
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL,
            f"UMS ID {fingerprint!r} is not registered in the License Portal.",
        )
    return Caller(ums_fingerprint=fingerprint, ums_pk=ums, label=f"UMS ID {fingerprint}")


def authenticate_ums(fingerprint, timestamp, idempotency_key, signature, method, path, body) -> Caller:
    """The caller a signed request stands for: the UMS ID must be registered with a certificate, the
    timestamp within MAX_CLOCK_SKEW of now and the signature the UMS ID key's over the request."""
    ums = UmsId.objects.filter(fingerprint=fingerprint or "").first()
    if ums is None or not ums.certificate_pem:
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL,
            f"UMS ID {fingerprint!r} is not registered in the License Portal.",
        )
    try:
        sent = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL, f"Timestamp {timestamp!r} is not whole seconds since 1970."
        ) from None
    skew = abs((clock.now() - sent).total_seconds())
    if skew > MAX_CLOCK_SKEW:
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL,
            f"Timestamp {timestamp} is {int(skew)} s away from the licensing service's clock "
            f"(at most {MAX_CLOCK_SKEW} s): a stale or replayed request, or a wrong clock.",
        )
    payload = signing_payload(method, path, str(timestamp), idempotency_key, body)
    if not signature_valid(ums.certificate_pem, payload, signature or ""):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL,
            f"The signature does not match UMS ID {fingerprint}'s certificate.",
        )
    UmsId.objects.filter(pk=ums.pk).update(last_contact_at=clock.now())
    return Caller(ums_fingerprint=ums.fingerprint, ums_pk=ums.pk, label=f"UMS ID {ums.fingerprint}")


# --- License Portal pack operations ------------------------------------------------------------------
PACK_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_pack_id(prefix: str) -> str:
    """A candidate pack ID: the product prefix, a dash and 5 random letters or digits."""
    return prefix + "-" + "".join(secrets.choice(PACK_ID_ALPHABET) for _ in range(5))


def _record(action: str, actor: str, pack: ProductPack | None = None, *, related=(), order=None, detail=""):
    """Append the License Portal action (the Activity list, the pack's history) in the caller's
    transaction, so a change and its record are written together or not at all."""
    return LicensePortalAction.objects.create(
        at=clock.now(),
        actor=actor[:200],
        action=action,
        pack_id=pack.pack_id if pack is not None else "",
        related_packs=LicensePortalAction.packs_field(list(related)),
        order_number=order.number if order is not None else "",
        subscription_key=str(pack.subscription_key) if pack is not None and pack.subscription_key_id else "",
        detail=detail,
    )


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
        _record(
            PortalAction.SPLIT,
            actor,
            source,
            related=[new.pack_id],
            detail=f"{n} free licenses split off {pack_id} into the new pack {new.pack_id}; "
            f"{pack_id} keeps {total - n} licenses ({used} bound).",
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
        _record(
            PortalAction.MERGE,
            actor,
            target,
            related=sources,
            detail=f"Merged into {target_id}: {merged_in}; {target_id} now has "
            f"{target.total_licenses + added} licenses.",
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

    def record(pack, released):
        _record(
            PortalAction.REMOVE_HARDWARE,
            actor,
            pack,
            related=[pack_id] if pack.pack_id != pack_id else (),
            detail=f"Removed hardware {', '.join(released)} from {pack.pack_id}: "
            f"{len(released)} license(s) freed.",
        )

    released_from, removed = _release(pack_id, units, actor, on_released=record)
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
    with transaction.atomic():
        pack = (
            ProductPack.objects.select_for_update(of=("self",))
            .select_related("subscription_key")
            .filter(pack_id=pack_id)
        )
        pack = pack.first()
        if pack is None:
            raise ValidationError({"pack": f"Pack {pack_id!r} does not exist."})
        if pack.comment == comment:
            return False
        old = pack.comment
        ProductPack.objects.filter(pk=pack.pk).update(comment=comment)
        _record(PortalAction.COMMENT, actor, pack, detail=f"Comment {old!r} -> {comment!r}")
    log.info("%s set the comment of %s", actor, pack_id)
    return True


def accept_eula(pack_id: str, *, actor: str) -> tuple[Order, bool]:
    """Accept the EULA of the order ``pack_id`` belongs to: one acceptance covers every pack of that
    order. Returns the order and whether it was accepted now; accepting again keeps the first record."""
    actor = (actor or "").strip()
    if not actor:
        raise ValidationError({"actor": "Say who accepts the EULA."})
    with transaction.atomic():
        pack = ProductPack.objects.select_related("subscription_key").filter(pack_id=pack_id).first()
        if pack is None:
            raise ValidationError({"pack": f"Pack {pack_id!r} does not exist."})
        if pack.order_id is None:
            raise ValidationError(
                {"pack": f"Pack {pack_id} belongs to no order: there is no EULA to accept."}
            )
        return _accept(Order.objects.select_for_update().get(pk=pack.order_id), actor, pack)


def accept_order_eula(number: str, *, actor: str) -> tuple[Order, bool]:
    """Accept the EULA of order ``number`` (from the Orders page or Order details): it covers every
    pack of the order. Returns the order and whether it was accepted now."""
    actor = (actor or "").strip()
    if not actor:
        raise ValidationError({"actor": "Say who accepts the EULA."})
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(number=number).first()
        if order is None:
            raise ValidationError({"order": f"Order {number!r} does not exist."})
        return _accept(order, actor, None)


def _accept(order: Order, actor: str, pack: ProductPack | None) -> tuple[Order, bool]:
    if order.eula_accepted:
        return order, False
    order.eula_accepted_by, order.eula_accepted_at = actor[:200], clock.now()
    order.save(update_fields=["eula_accepted_by", "eula_accepted_at"])
    packs = list(order.packs.order_by("pack_id").values_list("pack_id", flat=True))
    where = f"in the pack {pack.pack_id}" if pack is not None else "for the order"
    _record(
        PortalAction.EULA_ACCEPTED,
        actor,
        pack,
        related=[p for p in packs if pack is None or p != pack.pack_id],
        order=order,
        detail=f"EULA of order {order.number} accepted {where}; it covers "
        f"{len(packs)} pack(s): {', '.join(packs) or 'none'}.",
    )
    log.info("%s accepted the EULA of order %s (%s)", actor, order.number, where)
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


def reconcile_pack_counters(caller: Caller | None = None) -> dict[str, tuple[int, int]]:
    """Recompute every pack's used counter (or only those of ``caller``) from its active slots;
    returns {pack ID: (was, is)} for the packs whose counter had drifted (the slots are the truth)."""
    with transaction.atomic():
        scope = caller.packs() if caller is not None else ProductPack.objects.all()
        packs = list(scope.select_for_update().order_by("pk").values_list("pk", "pack_id", "used"))
        counts = dict(
            LicenseSlot.objects.filter(released_at__isnull=True, pack_id__in=[p[0] for p in packs])
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


def active_slots(
    ums_fingerprint: str | None, pack_ids=None, *, subscription_key_id=None
) -> list[tuple[str, str]]:
    """(pack ID, unit ID) of every active slot in the packs assigned to a UMS ID (or of an ALD
    token's subscription key; or in ``pack_ids`` of them)."""
    caller = _caller(ums_fingerprint, subscription_key_id)
    qs = LicenseSlot.objects.filter(released_at__isnull=True, pack__in=caller.packs())
    if pack_ids is not None:
        qs = qs.filter(pack__pack_id__in=list(pack_ids))
    return list(qs.order_by("pack__pack_id", "unit_id").values_list("pack__pack_id", "unit_id"))


def merged_pack_map(caller: Caller | None = None) -> dict[str, str]:
    """{pack ID: the pack it was merged into, following merges of merges}: slots moved there. For a
    ``caller``, only its own merged packs are listed."""
    rows = ProductPack.objects.filter(merged_into__isnull=False).values_list(
        "pack_id", "merged_into__pack_id", "assigned_ums__fingerprint", "subscription_key_id"
    )
    direct, mine = {}, set()
    for pack_id, into, fingerprint, key_id in rows:
        direct[pack_id] = into
        if caller is not None and (
            key_id == caller.subscription_key_id
            if caller.subscription_key_id is not None
            else fingerprint == caller.ums_fingerprint
        ):
            mine.add(pack_id)
    mine = None if caller is None else mine
    resolved = {}
    for pack_id in direct:
        if mine is not None and pack_id not in mine:
            continue
        target, seen = direct[pack_id], {pack_id}
        while target in direct and target not in seen:
            seen.add(target)
            target = direct[target]
        resolved[pack_id] = target
    return resolved


# --- license files ----------------------------------------------------------------------------------


def license_file_for(caller: Caller, pack_id: str, unit_id: str, service: str, expires, issued_at) -> bytes:
    """The signed license file of a license the caller's UMS holds: the unit ID must hold (or have
    held) a slot of the pack, and the service must be the pack's. Signed with this licensing
    service's key (licensing/license_files.py)."""
    from . import license_files

    pack = authorize_pack(pack_id, caller)
    if service != pack.service:
        raise LicenseServiceError(
            LicenseErrorCode.BAD_REQUEST,
            f"service {service!r} is not the service of pack {pack_id} ({pack.service}).",
        )
    bound_at = (
        LicenseSlot.objects.filter(pack=pack, unit_id=unit_id, released_at__isnull=True)
        .values_list("bound_at", flat=True)
        .first()
    )
    if bound_at is None:
        raise LicenseServiceError(
            LicenseErrorCode.UNKNOWN_UNIT_ID, f"Unit ID {unit_id!r} holds no license of pack {pack_id}."
        )
    # The service signs nothing beyond what the pack grants: an expiry later than the pack's (or
    # perpetual for a pack that expires) and an issue time in the future are refused.
    if pack.expiry_date is not None and (expires is None or expires > pack.expiry_date):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_REQUEST,
            f"expires {expires or 'never'} is later than the expiry of pack {pack_id} ({pack.expiry_date}).",
        )
    if issued_at.tzinfo is None or issued_at > clock.now() + datetime.timedelta(minutes=5):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_REQUEST,
            f"issued_at {issued_at.isoformat()!r} must be a time with its time zone, not in the future.",
        )
    # nor before the slot was bound (a day's leeway for the UMS's clock): a license is issued after
    if issued_at < bound_at - datetime.timedelta(days=1):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_REQUEST,
            f"issued_at {issued_at.isoformat()!r} is before the license of {unit_id} in pack {pack_id} "
            f"was bound ({bound_at.isoformat(timespec='seconds')}).",
        )
    return license_files.issue_license_file(unit_id, service, pack_id, expires, issued_at)
