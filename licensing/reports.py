"""Read models for the License Portal pages."""

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from ald_portal import clock

from .models import PackStatus, ProductPack, ProductType


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
