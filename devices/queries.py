"""Annotated querysets for the UMS pages: one query for the rows, never one per row."""

from dataclasses import dataclass

from django.db.models import Case, Count, Exists, OuterRef, Prefetch, Q, Value, When

from ald_portal import clock
from licensing.models import ProductType

from .filtersets import LicenseState
from .models import Device, DeviceLicense, LicenseStatus, LicenseWait, WaitingReason


def devices_with_license_state(on=None):
    on = on or clock.today()
    valid = DeviceLicense.objects.filter(device=OuterRef("pk"), status=LicenseStatus.CURRENT).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=on)
    )
    # A device waits when it lacks a valid license for a service it waits for; one that still holds
    # one while an exchange is pending counts as licensed (the reason is shown beside it).
    holds_waited_service = DeviceLicense.objects.filter(
        device=OuterRef("device"), service=OuterRef("service"), status=LicenseStatus.CURRENT
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gte=on))
    waiting = LicenseWait.objects.filter(device=OuterRef("pk")).exclude(Exists(holds_waited_service))
    return (
        Device.objects.select_related("directory", "firmware")
        .annotate(
            license_state=Case(
                When(Exists(waiting), then=Value(LicenseState.WAITING)),
                When(Exists(valid), then=Value(LicenseState.LICENSED)),
                default=Value(LicenseState.UNLICENSED),
            )
        )
        .prefetch_related(
            Prefetch(
                "licenses",
                queryset=DeviceLicense.objects.filter(status=LicenseStatus.CURRENT).order_by("service"),
                to_attr="current_licenses",
            ),
            Prefetch("waits", queryset=LicenseWait.objects.order_by("service"), to_attr="current_waits"),
        )
    )


# --- for the License Portal dashboard and Search hardware (project glue in ald_portal) ----------------
# Waiting reasons that more licenses would end: every eligible pack is used up. The others need
# something else: a pack that selects the device (no_eligible_pack), a newer IGEL OS (os_too_old), a
# pack with a later expiry (no_later_pack: the device still holds a valid license), the licensing
# service back (ils_unreachable).
MORE_LICENSES_WOULD_SERVE = (WaitingReason.NO_FREE_LICENSE,)


@dataclass
class Demand:
    service: str
    label: str
    waiting: int  # devices waiting for a license of this service
    more_licenses: int  # of them, the devices that more licenses would serve
    by_reason: dict  # {reason label: devices}


def service_label(service: str) -> str:
    if service.startswith("ADDON_"):
        return f"Add-on {service.removeprefix('ADDON_')}"
    return dict(ProductType.choices).get(service, service)


def demand_per_product_type(on=None) -> list[Demand]:
    """Devices waiting for a license, per service (WE, EMP, ADDON_x, ...), split by reason, and how
    many more licenses would serve them (one query). A device that still holds a valid license of the
    service (an exchange is pending) is not waiting for a license, as on the device list."""
    on = on or clock.today()
    holds_valid = DeviceLicense.objects.filter(
        device=OuterRef("device"), service=OuterRef("service"), status=LicenseStatus.CURRENT
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gte=on))
    rows = (
        LicenseWait.objects.exclude(Exists(holds_valid))
        .filter(device__moved_to_bin=False)
        .values_list("service", "reason")
        .annotate(devices=Count("device", distinct=True))
        .order_by("service", "reason")
    )
    labels = dict(WaitingReason.choices)
    out: dict[str, Demand] = {}
    for service, reason, devices in rows:
        d = out.setdefault(service, Demand(service, service_label(service), 0, 0, {}))
        d.waiting += devices
        d.by_reason[labels.get(reason, reason)] = devices
        if reason in MORE_LICENSES_WOULD_SERVE:
            d.more_licenses += devices
    return list(out.values())


def unit_ids_with_mac(mac: str) -> list[str]:
    """The unit IDs of the devices with this MAC (12 upper-case hex digits) whose unit ID differs
    from it (UD Pocket and newer devices): Search hardware finds their licenses by MAC too."""
    return list(
        Device.objects.filter(mac=mac)
        .exclude(unit_id=mac)
        .order_by("unit_id")
        .values_list("unit_id", flat=True)
    )


def macs_of_unit_ids(unit_ids) -> dict[str, str]:
    """{unit ID: MAC} of the devices holding these unit IDs (one query)."""
    return dict(
        Device.objects.filter(unit_id__in=list(unit_ids)).order_by("pk").values_list("unit_id", "mac")
    )
