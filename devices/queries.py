"""Annotated querysets for the UMS pages: one query for the rows, never one per row."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Case, Count, Exists, OuterRef, Prefetch, Q, Value, When

from ald_portal import clock
from licensing.models import ProductType

from .filtersets import LicenseState
from .models import Device, DeviceLicense, LicenseStatus, LicenseWait, WaitingReason


def license_waits(on=None):
    """The waiting states of devices that really wait for a license: a device waits for a service
    when it lacks a valid license of it; one that still holds one while an exchange is pending
    counts as licensed (the reason is shown beside it). The one rule behind the device list's
    license state and waiting filters, the dashboard's demand and the Deployment page's summary."""
    on = on or clock.today()
    holds_waited_service = DeviceLicense.objects.filter(
        device=OuterRef("device"), service=OuterRef("service"), status=LicenseStatus.CURRENT
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gte=on))
    return LicenseWait.objects.exclude(Exists(holds_waited_service))


def devices_with_license_state(on=None):
    on = on or clock.today()
    valid = DeviceLicense.objects.filter(device=OuterRef("pk"), status=LicenseStatus.CURRENT).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=on)
    )
    waiting = license_waits(on).filter(device=OuterRef("pk"))
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


# --- the state of one deployed license, as the device page shows it (DeviceLicense.expiry_state) ---

EXPIRY_STATES = [
    ("licensed", "Licensed"),
    ("expiring", "Expiring"),
    ("grace", "Grace period (IGEL OS 12)"),
    ("expired", "Expired"),
]
# Firmware.version_key starts with the major version as five digits: "00012..." is IGEL OS 12 or later.
OS12_KEY = "00012"


def expiry_state_q(state: str, today, warn_days: int) -> Q:
    """The database form of DeviceLicense.expiry_state for ``state``, on DeviceLicense rows."""
    warn = today + timedelta(days=warn_days)
    in_grace = Q(expires_at__gte=today - timedelta(days=DeviceLicense.GRACE_DAYS)) & Q(
        device__firmware__version_key__gte=OS12_KEY
    )
    if state == "licensed":
        return Q(expires_at__isnull=True) | Q(expires_at__gt=warn)
    if state == "expiring":
        return Q(expires_at__gte=today, expires_at__lte=warn)
    if state == "grace":
        return Q(expires_at__lt=today) & in_grace
    if state == "expired":
        return Q(expires_at__lt=today) & ~in_grace
    raise ValueError(f"unknown license state {state!r}")


def licenses_with_state(today=None, warn_days=None):
    """Every deployed license with its device and ``expiry_state`` worked out in the query."""
    from .models import DeploymentSettings

    today = today or clock.today()
    if warn_days is None:
        warn_days = DeploymentSettings.load().exchange_days
    return DeviceLicense.objects.select_related("device").annotate(
        expiry_state=Case(
            *(When(expiry_state_q(s, today, warn_days), then=Value(s)) for s, _ in EXPIRY_STATES[:3]),
            default=Value("expired"),
        )
    )


DEPLOYING_ACTIONS = ("deploy", "renew", "exchange")  # DeploymentEvent actions that put a license on a device


def deployments_per_day(days: int = 30, today=None) -> list[tuple[str, int]]:
    """Licenses deployed (new, renewed or exchanged, successfully) per day over the last ``days``
    days up to today, in the portal's time zone, every day present: one query."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from .models import DeploymentEvent

    today = today or clock.today()
    first = today - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    counts = dict(
        DeploymentEvent.objects.filter(
            action__in=DEPLOYING_ACTIONS,
            outcome=DeploymentEvent.Outcome.SUCCESS,
            at__date__gte=first,
            at__date__lte=today,
        )
        .annotate(day=TruncDate("at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [(f"{d:%m-%d}", counts.get(d, 0)) for d in (first + timedelta(days=i) for i in range(days))]


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
    labels = dict(WaitingReason.choices)
    out: dict[str, Demand] = {}
    for service, reason, devices in _waiting_per_service_and_reason(on):
        d = out.setdefault(service, Demand(service, service_label(service), 0, 0, {}))
        d.waiting += devices
        d.by_reason[labels.get(reason, reason)] = devices
        if reason in MORE_LICENSES_WOULD_SERVE:
            d.more_licenses += devices
    return list(out.values())


def devices_waiting(on=None) -> int:
    """How many devices wait for a license of any service (a device waiting for two counts once)."""
    return license_waits(on).filter(device__moved_to_bin=False).values("device").distinct().count()


def waiting_summary(on=None):
    """Licenses > Deployment: the devices waiting per service and reason, with the reason's label."""
    labels = dict(WaitingReason.choices)
    return [
        {"service": service, "reason": reason, "label": labels.get(reason, reason), "n": n}
        for service, reason, n in _waiting_per_service_and_reason(on)
    ]


def _waiting_per_service_and_reason(on=None):
    """(service, reason, devices) of the devices outside the recycle bin that wait; one query."""
    return (
        license_waits(on)
        .filter(device__moved_to_bin=False)
        .values_list("service", "reason")
        .annotate(devices=Count("device", distinct=True))
        .order_by("service", "reason")
    )


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
