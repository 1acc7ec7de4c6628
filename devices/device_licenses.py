"""What an administrator does to device licenses by hand: License manually..., remove a license,
delete a device with its licenses, clear an ALD exclusion. Licensing by hand goes through the same
claims and allocation as ALD, so counts stay right and no device ends with two licenses of a service."""

import datetime
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q

from ald_portal import clock

from .directories import subtree
from .engine import CycleReport, PackState, Planner, _Batch, needy_devices
from .ils import IlsUnavailable, get_client
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    LicenseStatus,
    RegisteredPack,
    WaitingReason,
)
from .tasks import enqueue_license_devices


class _ManualPlanner(Planner):
    """The administrator chose the pack: no conditions, no ordering, no renewal; the OS minimum and
    the free licenses still hold."""

    def __init__(self, state: PackState, today):
        super().__init__(state.pack.service, [state], today)

    def renewal_pack(self, c, exclude=()):
        return None

    def is_renewal(self, c, state):
        return False

    def choose(self, c, exclude=()):
        state = self.states[0]
        if self.minimum_os and c.os_key < self.minimum_os:
            return None, WaitingReason.OS_TOO_OLD
        if not state.usable:
            return None, WaitingReason.NO_ELIGIBLE_PACK
        if state.free <= 0:
            return None, WaitingReason.NO_FREE_LICENSE
        return state, None


@dataclass
class ManualResult:
    pack_id: str
    licensed: int = 0
    already_licensed: int = 0
    in_recycle_bin: int = 0
    failed: Counter = field(default_factory=Counter)  # reason -> devices

    def summary(self) -> str:
        parts = [f"{self.licensed} device(s) licensed from {self.pack_id}"]
        if self.already_licensed:
            parts.append(f"{self.already_licensed} already licensed for this service")
        if self.in_recycle_bin:
            parts.append(f"{self.in_recycle_bin} in the recycle bin, skipped")
        parts += [f"{n} not licensed: {WaitingReason(r).label}" for r, n in sorted(self.failed.items())]
        return "; ".join(parts) + "."


def packs_to_license_manually(today=None) -> list:
    """The active registered packs for *License manually...*, the likeliest choice first: packs in
    force with free licenses (Workspace Edition first, then the latest expiry), then those used
    up, then those not in force (the service refuses them; they stay listed so the refusal can say
    why). Each carries ``choice_label`` for the drop-down."""
    today = today or clock.today()
    far = datetime.date.max

    def in_force(rp):
        return (
            rp.ils_usable and rp.start_date <= today and (rp.expiry_date is None or rp.expiry_date >= today)
        )

    def rank(rp):
        group = 0 if in_force(rp) and rp.free else 1 if in_force(rp) else 2
        return (group, rp.service != "WE", rp.service, -(rp.expiry_date or far).toordinal(), rp.pack_id)

    packs = sorted(RegisteredPack.objects.filter(active=True), key=rank)
    for rp in packs:
        expiry = f"expires {rp.expiry_date}" if rp.expiry_date else "perpetual"
        if not in_force(rp):
            state = f"not in force ({rp.ils_status.lower()}, {expiry})"
        else:
            state = f"{rp.free} free, {expiry}"
        rp.choice_label = f"{rp.pack_id} · {rp.product_name} · {state}"
    return packs


def license_manually(device_ids, pack_id: str, actor: str) -> ManualResult:
    """License the devices from the chosen registered pack (any distribution method, Disabled
    included: that is what such packs are for)."""
    today = clock.today()
    rp = RegisteredPack.objects.filter(pack_id=pack_id).first()
    if rp is None:
        raise ValidationError({"pack_id": f"Pack {pack_id!r} is not registered in this UMS."})
    if not rp.active:
        raise ValidationError({"pack_id": f"Pack {pack_id} is deactivated."})
    in_force = (
        rp.ils_usable and rp.start_date <= today and (rp.expiry_date is None or rp.expiry_date >= today)
    )
    if not in_force:
        raise ValidationError(
            {"pack_id": f"Pack {pack_id} is not in force (status {rp.ils_status}, expiry {rp.expiry_date})."}
        )
    ids = sorted(set(int(d) for d in device_ids))
    if not ids:
        raise ValidationError({"devices": "Choose at least one device."})
    rows = dict(Device.objects.filter(pk__in=ids).values_list("pk", "moved_to_bin"))
    missing = [d for d in ids if d not in rows]
    if missing:
        raise ValidationError({"devices": f"No device with id {missing[0]}."})
    result = ManualResult(pack_id)
    result.in_recycle_bin = sum(1 for binned in rows.values() if binned)
    live = [d for d, binned in rows.items() if not binned]
    needy = needy_devices(rp.service, None, today, live, include_excluded=True)
    result.already_licensed = len(live) - len(needy)
    state = PackState(rp, None, True, rp.used, rp.total)
    planner = _ManualPlanner(state, today)
    report = CycleReport()
    client = get_client(DeploymentSettings.load().ums_id_fingerprint)
    size = 500
    for start in range(0, len(needy), size):
        _Batch(rp.service, planner, client, report, today, actor=actor, manual=True).run(
            needy[start : start + size]
        )
    result.licensed = len(report.licensed_devices)
    result.failed = Counter({str(k): v for k, v in report.waiting.items()})
    return result


def license_directory_manually(directory_id: int, pack_id: str, actor: str) -> ManualResult:
    """License manually every device in a directory and its subdirectories."""
    ids = list(Device.objects.filter(directory_id__in=subtree([directory_id])).values_list("pk", flat=True))
    return license_manually(ids, pack_id, actor)


def _release(pack_id: str, unit_id: str) -> bool:
    client = get_client(DeploymentSettings.load().ums_id_fingerprint)
    try:
        released = client.release(pack_id, unit_id)
    except IlsUnavailable as exc:
        raise ValidationError(
            f"The licensing service cannot be reached ({exc}); nothing was removed."
        ) from exc
    if released:
        RegisteredPack.objects.filter(pack_id=pack_id, used__gt=0).update(used=F("used") - 1)
    return released


def remove_license(license_id: int | None, actor: str, device_id: int | None = None) -> DeviceLicense:
    """Remove a device license by hand: free its slot at the licensing service, revoke it (and the
    older licenses of the same slot), and keep the device out of ALD until an administrator clears
    that, so the next sweep does not silently license it again."""
    lic = DeviceLicense.objects.select_related("device").filter(pk=license_id).first()
    if lic is None or lic.status == LicenseStatus.REVOKED or device_id not in (None, lic.device_id):
        where = "" if device_id is None else f" on device {device_id}"
        raise ValidationError({"license_id": f"license_id {license_id}: no license{where} to remove."})
    released = _release(lic.pack_id, lic.unit_id)
    now = clock.now()
    device = lic.device
    with transaction.atomic():
        # Two removals of the same license at once both reach this point (the slot is freed once:
        # the later release finds it free); only the first to lock the license removes it.
        if (
            not DeviceLicense.objects.select_for_update()
            .filter(pk=lic.pk)
            .exclude(status=LicenseStatus.REVOKED)
            .values_list("pk", flat=True)[:1]
        ):
            raise ValidationError(
                {"license_id": f"license_id {license_id}: removed meanwhile by someone else."}
            )
        DeviceLicense.objects.filter(device=device, pack_id=lic.pack_id, service=lic.service).exclude(
            status=LicenseStatus.REVOKED
        ).update(status=LicenseStatus.REVOKED, revoked_at=now)
        # The device keeps using its latest remaining valid license of the service, if any.
        rest = (
            DeviceLicense.objects.filter(device=device, service=lic.service, status=LicenseStatus.SUPERSEDED)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gte=clock.today()))
            .order_by(F("expires_at").desc(nulls_first=True), "-issued_at")
            .first()
        )
        if (
            rest is not None
            and not DeviceLicense.objects.filter(
                device=device, service=lic.service, status=LicenseStatus.CURRENT
            ).exists()
        ):
            DeviceLicense.objects.filter(pk=rest.pk).update(status=LicenseStatus.CURRENT)
        reason = f"{lic.service} license from {lic.pack_id} removed by {actor} on {now:%Y-%m-%d}"
        Device.objects.filter(pk=device.pk).update(ald_excluded=True, ald_excluded_reason=reason[:300])
        DeploymentEvent.objects.create(
            at=now,
            actor=actor,
            action=DeploymentEvent.Action.REMOVE,
            device=device,
            unit_id=lic.unit_id,
            pack_id=lic.pack_id,
            service=lic.service,
            message=f"{reason}; slot {'freed' if released else 'was already free'}; device excluded from ALD",
        )
    lic.refresh_from_db()
    return lic


def clear_exclusion(device_id: int, actor: str) -> None:
    """Let ALD license the device again; it is queued at once."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if not device.ald_excluded:
            return
        Device.objects.filter(pk=device_id).update(ald_excluded=False, ald_excluded_reason="")
        DeploymentEvent.objects.create(
            actor=actor,
            action=DeploymentEvent.Action.EXCLUDE,
            device=device,
            unit_id=device.unit_id,
            message=f"ALD exclusion cleared ({device.ald_excluded_reason})"[:500],
        )
        enqueue_license_devices([device_id])


def delete_device(device_id: int, actor: str, delete_licenses: bool) -> int:
    """Delete a device. With ``delete_licenses`` its slots are freed at the licensing service first
    (UMS "Delete licenses"); without, they stay bound and reconciliation reports them. Returns the
    number of slots freed."""
    device = Device.objects.filter(pk=device_id).first()
    if device is None:
        raise ValidationError({"device": f"No device with id {device_id}."})
    freed = 0
    packs = []
    if delete_licenses:
        packs = sorted(
            set(device.licenses.exclude(status=LicenseStatus.REVOKED).values_list("pack_id", flat=True))
        )
        freed = sum(1 for pack_id in packs if _release(pack_id, device.unit_id))
    with transaction.atomic():
        # Locked first: a change writing an executed action for this device waits for the delete
        # (and then finds the device gone), or the delete waits for it and takes its action along.
        if not Device.objects.select_for_update().filter(pk=device.pk).exists():
            raise ValidationError({"device": f"No device with id {device_id}: deleted meanwhile."})
        DeploymentEvent.objects.create(
            actor=actor,
            action=DeploymentEvent.Action.DELETE_DEVICE,
            device=None,
            unit_id=device.unit_id,
            message=(
                f"Device {device.name} deleted with its licenses ({', '.join(packs) or 'none'}; {freed} slot(s) freed)"
                if delete_licenses
                else f"Device {device.name} deleted; its licenses were kept"
            )[:500],
        )
        device.delete()
    return freed


def license_file(license_id: int) -> tuple[str, bytes]:
    """The signed file of a device license, as the device downloads it: (file name, content). Asked
    of the licensing service once and kept with the license. A revoked license has none."""
    lic = DeviceLicense.objects.filter(pk=license_id).first()
    if lic is None or lic.status == LicenseStatus.REVOKED:
        raise ValidationError({"license": f"No license {license_id} with a file to download."})
    if not lic.license_file:
        client = get_client(DeploymentSettings.load().ums_id_fingerprint)
        data = client.license_file(lic.unit_id, lic.service, lic.pack_id, lic.expires_at, lic.issued_at)
        DeviceLicense.objects.filter(pk=lic.pk, license_file="").update(license_file=data.decode())
        lic.refresh_from_db(fields=["license_file"])
    return f"{lic.unit_id}_{lic.service}_{lic.pack_id}.lic", lic.license_file.encode()
