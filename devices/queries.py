"""Annotated querysets for the UMS pages: one query for the rows, never one per row."""

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
