"""Annotated querysets for the UMS pages: one query for the rows, never one per row."""

from datetime import timedelta

from django.db.models import Case, Exists, OuterRef, Prefetch, Q, Value, When

from ald_portal import clock

from .filtersets import LicenseState
from .models import Device, DeviceLicense, LicenseStatus, LicenseWait


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
