import datetime

import django_filters
from django import forms
from django.db.models import Q

from ald_portal import clock
from ald_portal.filters import DayFilter
from ald_portal.importing import normalize_hex_id

from .models import (
    UNIT_ID_RE,
    LicensePortalAction,
    LicenseSlot,
    Order,
    PackStatus,
    PortalAction,
    ProductPack,
    ProductType,
    SubscriptionKey,
)
from .reports import renew_now_q

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
        choices=[
            ("expired", "Expired"),
            ("30", "Within 30 days"),
            ("90", "Within 90 days"),
            ("renew", "RENEW NOW! (bound licenses, expiring within 30 days or expired)"),
        ],
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
        if value == "renew":
            return queryset.filter(renew_now_q(today))
        if value == "expired":
            return queryset.filter(expiry_date__lt=today)
        return queryset.filter(
            expiry_date__gte=today, expiry_date__lte=today + datetime.timedelta(days=int(value))
        )


def _text(value):
    return (value or "").replace("\x00", "").strip()  # PostgreSQL text holds no NUL


class BoundFilterSet(django_filters.FilterSet):
    """Bound even without a query string, so defaults apply to the bare URL too."""

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data if data is not None else {}, *args, **kwargs)


class OrderFilterSet(BoundFilterSet):
    q = django_filters.CharFilter(method="search", label="Search (order, pack ID, subscription key)")
    eula = django_filters.ChoiceFilter(
        choices=[("pending", "Not accepted"), ("accepted", "Accepted")],
        method="with_eula",
        label="EULA",
        empty_label="Any",
    )

    class Meta:
        model = Order
        fields = ["q", "eula"]

    def search(self, queryset, name, value):
        value = _text(value)
        if not value:
            return queryset
        packs = ProductPack.objects.filter(
            Q(pack_id__icontains=value) | Q(subscription_key__key__icontains=value)
        ).values("order")
        return queryset.filter(Q(number__icontains=value) | Q(pk__in=packs))

    def with_eula(self, queryset, name, value):
        return queryset.filter(eula_accepted_at__isnull=value == "pending")


class SubscriptionKeyFilterSet(BoundFilterSet):
    q = django_filters.CharFilter(method="search", label="Search (subscription key, pack ID, order)")
    expires = django_filters.ChoiceFilter(
        choices=[("expired", "Expired"), ("30", "Within 30 days"), ("90", "Within 90 days")],
        method="expiring",
        label="Expiration",
        empty_label="Any",
    )

    class Meta:
        model = SubscriptionKey
        fields = ["q", "expires"]

    def search(self, queryset, name, value):
        value = _text(value)
        if not value:
            return queryset
        packs = ProductPack.objects.filter(
            Q(pack_id__icontains=value) | Q(order__number__icontains=value)
        ).values("subscription_key")
        return queryset.filter(Q(key__icontains=value) | Q(pk__in=packs))

    def expiring(self, queryset, name, value):
        """On the key's expiration date (annotated ``expiration``: its packs' latest expiry)."""
        today = clock.today()
        if value == "expired":
            return queryset.filter(expiration__lt=today)
        return queryset.filter(
            expiration__gte=today, expiration__lte=today + datetime.timedelta(days=int(value))
        )


class ActivityFilterSet(BoundFilterSet):
    q = django_filters.CharFilter(method="search", label="Search (pack ID, order, unit ID, detail)")
    action = django_filters.ChoiceFilter(choices=PortalAction.choices, label="Action", empty_label="Any")
    actor = django_filters.CharFilter(method="by_actor", label="User")
    since = DayFilter(
        field_name="at", lookup_expr="date__gte", label="From (YYYY-MM-DD)", widget=forms.DateInput()
    )
    until = DayFilter(
        field_name="at", lookup_expr="date__lte", label="To (YYYY-MM-DD)", widget=forms.DateInput()
    )

    class Meta:
        model = LicensePortalAction
        fields = ["q", "action", "actor", "since", "until"]

    def search(self, queryset, name, value):
        value = _text(value)
        if not value:
            return queryset
        return queryset.filter(
            Q(pack_id__icontains=value)
            | Q(related_packs__icontains=value)
            | Q(order_number__icontains=value)
            | Q(subscription_key__icontains=value)
            | Q(detail__icontains=value)
        )

    def by_actor(self, queryset, name, value):
        value = _text(value)
        return queryset.filter(actor__iexact=value) if value else queryset


class HardwareIdField(forms.CharField):
    """A unit ID or MAC in any common form (colons, dashes, dots, lower case, spaces around) ->
    12 or 18 upper-case hex digits; anything else is a form error naming the value."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        plain = normalize_hex_id(value, spaces=True)
        if plain is None or not UNIT_ID_RE.match(plain):
            raise forms.ValidationError(
                f"Unit ID or MAC {value!r} is not a unit ID or MAC: give 12 or 18 hexadecimal digits, "
                "plain or in pairs separated by colons, dashes or spaces (00:E0:C5:12:34:56), or in "
                "fours separated by dots (00E0.C512.3456)."
            )
        return plain


class HardwareFilter(django_filters.CharFilter):
    field_class = HardwareIdField


class HardwareSearchFilterSet(BoundFilterSet):
    """ILP *Search hardware*: the slots (active and released) bound to one unit ID or MAC.

    ``extra_unit_ids(hex_id)`` may name more unit IDs for the identifier (a device whose MAC differs
    from its unit ID, known only to the UMS); the licensing side itself matches the unit ID."""

    hardware = HardwareFilter(method="by_hardware", label="Unit ID or MAC")
    state = django_filters.ChoiceFilter(
        choices=[("active", "Bound now"), ("released", "Removed (released)")],
        method="by_state",
        label="License",
        empty_label="Bound now or removed",
    )

    class Meta:
        model = LicenseSlot
        fields = ["hardware", "state"]

    def __init__(self, *args, extra_unit_ids=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_unit_ids = extra_unit_ids or (lambda hex_id: [])

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("hardware"):
            return queryset.none()  # as the License Portal: nothing until a unit ID or MAC is given
        return super().filter_queryset(queryset)

    def by_hardware(self, queryset, name, value):
        return queryset.filter(unit_id__in={value, *self.extra_unit_ids(value)})

    def by_state(self, queryset, name, value):
        return queryset.filter(released_at__isnull=value == "active")
