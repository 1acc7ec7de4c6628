import datetime

import django_filters
from django.db.models import Q

from ald_portal import clock

from .models import PackStatus, ProductPack, ProductType

RETIRED = [PackStatus.ARCHIVED, PackStatus.MERGED]


class PackFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search (pack ID, subscription key)")
    product_type = django_filters.ChoiceFilter(choices=ProductType.choices, label="Product type")
    status = django_filters.ChoiceFilter(
        choices=PackStatus.choices,
        method="with_status",
        label="Status",
        empty_label="In use (not archived or merged)",
    )
    expires = django_filters.ChoiceFilter(
        choices=[("expired", "Expired"), ("30", "Within 30 days"), ("90", "Within 90 days")],
        method="expiring",
        label="Expiry",
    )

    class Meta:
        model = ProductPack
        fields = ["q", "product_type", "status", "expires"]

    def __init__(self, data=None, *args, **kwargs):
        # Bound even without a query string, so the default (packs in use) applies to the bare URL too.
        super().__init__(data if data is not None else {}, *args, **kwargs)

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # As the License Portal: archived and merged packs are listed only when asked for.
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.exclude(status__in=RETIRED)
        return queryset

    def search(self, queryset, name, value):
        value = value.replace("\x00", "").strip()  # PostgreSQL text holds no NUL
        if not value:
            return queryset
        return queryset.filter(Q(pack_id__icontains=value) | Q(subscription_key__key__icontains=value))

    def with_status(self, queryset, name, value):
        """The status the pages show (ProductPack.effective_status): stored ARCHIVED/MERGED win,
        otherwise the dates decide."""
        if value in RETIRED:
            return queryset.filter(status=value)
        today = clock.today()
        queryset = queryset.exclude(status__in=RETIRED)
        if value == PackStatus.NOT_YET_ACTIVATED:
            return queryset.filter(start_date__gt=today)
        queryset = queryset.filter(start_date__lte=today)
        if value == PackStatus.EXPIRED:
            return queryset.filter(expiry_date__lt=today)
        return queryset.filter(Q(expiry_date__isnull=True) | Q(expiry_date__gte=today))

    def expiring(self, queryset, name, value):
        today = clock.today()
        if value == "expired":
            return queryset.filter(expiry_date__lt=today)
        return queryset.filter(
            expiry_date__gte=today, expiry_date__lte=today + datetime.timedelta(days=int(value))
        )
