"""Read models for the License Portal pages."""

import datetime
import math
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from ald_portal import clock

from .models import LicenseSlot, PackStatus, ProductPack, ProductType


@dataclass
class Consumption:
    product_type: str
    label: str
    packs: int
    total: int
    used: int

    @property
    def free(self):
        return self.total - self.used

    @property
    def percent(self):
        return round(100 * self.used / self.total) if self.total else 0


def product_type_consumption(on=None) -> list[Consumption]:
    """Used, total and free per product type over the packs in force today (one query)."""
    on = on or clock.today()
    rows = (
        ProductPack.objects.filter(status=PackStatus.ACTIVE, start_date__lte=on)
        .filter(Q(expiry_date__isnull=True) | Q(expiry_date__gte=on))
        .values("product_type")
        .annotate(packs=Count("pk"), total=Sum("total_licenses"), used=Sum("used"))
        .order_by("product_type")
    )
    labels = dict(ProductType.choices)
    return [
        Consumption(
            r["product_type"],
            labels.get(r["product_type"], r["product_type"]),
            r["packs"],
            r["total"] or 0,
            r["used"] or 0,
        )
        for r in rows
    ]


# --- the dashboard's quick lists, expiry chart and the use-up forecast ---------------------------------
RENEW_WITHIN_DAYS = 30
FORECAST_DAYS = 30


def renew_now_q(on):
    """RENEW NOW!: packs in use whose licenses are bound to devices and that expire within 30 days or
    have expired: without a renewal those devices lose (or have lost) their license."""
    return Q(used__gt=0, expiry_date__lte=on + datetime.timedelta(days=RENEW_WITHIN_DAYS))


def expiring_q(on, days):
    return Q(expiry_date__gte=on, expiry_date__lte=on + datetime.timedelta(days=days))


@dataclass
class QuickLists:
    expired: int
    within_30: int
    within_90: int
    renew_now: int


def quick_list_counts(on=None) -> QuickLists:
    """How many packs in use (not archived or merged) each dashboard quick list holds (one query).
    The lists themselves are the Product Packs list with ``expires=`` expired, 30, 90 or renew."""
    on = on or clock.today()
    counts = ProductPack.objects.non_archived().aggregate(
        expired=Count("pk", filter=Q(expiry_date__lt=on)),
        within_30=Count("pk", filter=expiring_q(on, 30)),
        within_90=Count("pk", filter=expiring_q(on, 90)),
        renew_now=Count("pk", filter=renew_now_q(on)),
    )
    return QuickLists(**counts)


def licenses_expiring_per_month(on=None, months=12) -> list[tuple[str, int]]:
    """(YYYY-MM, licenses) for this month and the next ``months - 1``: the licenses of packs in use
    whose expiry date falls in that month from today on (one query)."""
    on = on or clock.today()
    firsts = [_add_months(on.replace(day=1), i) for i in range(months + 1)]
    rows = (
        ProductPack.objects.non_archived()
        .filter(expiry_date__gte=on, expiry_date__lt=firsts[-1])
        .values_list("expiry_date", "total_licenses")
    )
    per_month = {first: 0 for first in firsts[:-1]}
    for expiry, total in rows:
        per_month[expiry.replace(day=1)] += total
    return [(first.strftime("%Y-%m"), n) for first, n in per_month.items()]


def _add_months(day: datetime.date, n: int) -> datetime.date:
    month = day.month - 1 + n
    return day.replace(year=day.year + month // 12, month=month % 12 + 1)


def with_recent_bindings(queryset, on=None):
    """Annotate ``bound_recently``: the slots of each pack bound in the last 30 days (released since
    or not): the rate the forecast extrapolates. One subquery, not one query per pack."""
    now = clock.now() if on is None else on
    since = now - datetime.timedelta(days=FORECAST_DAYS)
    recent = (
        LicenseSlot.objects.filter(pack=OuterRef("pk"), bound_at__gte=since, bound_at__lte=now)
        .order_by()
        .values("pack")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(bound_recently=Coalesce(Subquery(recent), 0))


def used_up_on(free: int, bound_recently: int, on=None) -> datetime.date | None:
    """The day a pack with ``free`` licenses is used up if licenses keep being bound at the last
    30 days' rate; None when nothing was bound in that time (no rate). A pack with no free license
    is used up today."""
    on = on or clock.today()
    if free <= 0:
        return on
    if bound_recently <= 0:
        return None
    return on + datetime.timedelta(days=math.ceil(free * FORECAST_DAYS / bound_recently))
