from urllib.parse import urlencode

import django_tables2 as tables
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from ald_portal import clock
from ald_portal.tables import PortalTable

from .models import (
    LicensePortalAction,
    LicenseSlot,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    SubscriptionKey,
)
from .reports import used_up_on


def device_link(unit_id):
    """The UMS device list filtered by this unit ID: where the device holding the license is."""
    return format_html(
        '<a href="{}?{}">{}</a>', reverse("devices:device_list"), urlencode({"q": unit_id}), unit_id
    )


def local_time(value):
    """A date and time for an export: local, to the minute, as the pages show it."""
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""


def pack_link(pack_id):
    return format_html('<a href="{}">{}</a>', reverse("licensing:pack_detail", args=[pack_id]), pack_id)


class PackTable(PortalTable):
    # Every sort ends on the primary key, so pages never repeat or skip a pack.
    pack_id = tables.Column(verbose_name="Pack ID", linkify=("licensing:pack_detail", [tables.A("pack_id")]))
    product_name = tables.Column(verbose_name="Product", order_by=("product_name", "pk"))
    product_type = tables.Column(order_by=("product_type", "pk"))
    status = tables.Column(verbose_name="Status", empty_values=(), orderable=False)
    total_licenses = tables.Column(verbose_name="Total", order_by=("total_licenses", "pk"))
    used = tables.Column(order_by=("used", "pk"))
    free = tables.Column(empty_values=(), orderable=False)
    utilization = tables.TemplateColumn(
        template_name="includes/utilization_cell.html",
        verbose_name="Consumption",
        orderable=False,
        empty_values=(),
    )
    expiry_date = tables.DateColumn(
        verbose_name="Expiry", default="perpetual", order_by=("expiry_date", "pk")
    )
    subscription_key = tables.Column(
        verbose_name="Subscription key", order_by=("subscription_key__key", "pk")
    )
    assigned_ums = tables.Column(verbose_name="UMS ID", order_by=("assigned_ums__name", "pk"))
    comment = tables.Column(order_by=("comment", "pk"))

    class Meta:
        model = ProductPack
        fields = (
            "pack_id",
            "product_name",
            "product_type",
            "status",
            "total_licenses",
            "used",
            "free",
            "utilization",
            "expiry_date",
            "subscription_key",
            "assigned_ums",
            "comment",
        )
        order_by = ("pack_id",)
        attrs = {"class": "table"}

    def render_status(self, record):
        return record.get_effective_status_display()

    def render_free(self, record):
        return record.free


class LicenseSlotTable(PortalTable):
    """The licenses of one pack by unit ID, each with a box to tick for *Remove hardware*."""

    unit_id = tables.Column(verbose_name="Unit ID", order_by=("unit_id", "pk"))
    bound_at = tables.DateTimeColumn(verbose_name="Bound at", order_by=("bound_at", "pk"))
    device = tables.Column(verbose_name="Device", empty_values=(), orderable=False)
    ums = tables.Column(verbose_name="UMS ID", order_by=("ums__name", "pk"), default="—")
    remove = tables.Column(verbose_name="Remove", empty_values=(), orderable=False)

    class Meta:
        model = LicenseSlot
        fields = ("unit_id", "bound_at", "ums", "device", "remove")
        order_by = ("unit_id",)
        empty_text = "No license of this pack is bound to a unit ID."
        attrs = {"class": "table"}

    def __init__(self, *args, ticked=(), disabled=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticked, self.disabled = set(ticked), disabled

    def value_bound_at(self, value):
        return local_time(value)

    def render_device(self, record):
        return format_html(
            '<a href="{}?{}">Device {}</a>',
            reverse("devices:device_list"),
            urlencode({"q": record.unit_id}),
            record.unit_id,
        )

    def value_device(self, record):
        return record.unit_id

    def render_remove(self, record):
        return format_html(
            '<input type="checkbox" name="unit_ids" value="{}" form="remove-hardware" '
            'aria-label="Remove {}"{}{}>',
            record.unit_id,
            record.unit_id,
            " checked" if record.unit_id in self.ticked else "",
            " disabled" if self.disabled else "",
        )


class PackSizeChangeTable(PortalTable):
    change = tables.Column(verbose_name="Change", empty_values=(), orderable=False)

    class Meta:
        model = PackSizeChange
        fields = ("at", "old_total", "new_total", "change", "reason", "actor", "detail")
        attrs = {"class": "table"}
        orderable = False

    def render_change(self, record):
        return f"{record.change:+d}"


class DashboardPackTable(PackTable):
    """The dashboard's non-archived packs, with when each will be used up at the last 30 days' rate
    (the queryset is annotated with ``bound_recently`` by ``reports.with_recent_bindings``)."""

    used_up = tables.Column(
        verbose_name="Used up at the last 30 days' rate", empty_values=(), orderable=False
    )

    class Meta(PackTable.Meta):
        fields = PackTable.Meta.fields + ("used_up",)

    def render_used_up(self, record):
        if record.effective_status() == PackStatus.EXPIRED:
            return "expired"  # binds no more licenses
        day = used_up_on(record.free, record.bound_recently, clock.today())
        if day is None:
            return "not at this rate"
        if record.free <= 0:
            return "used up"
        shown = formats.date_format(day, "SHORT_DATE_FORMAT")
        if record.expiry_date is not None and day > record.expiry_date:
            return f"{shown} (after its expiry)"
        return f"{shown} ({record.bound_recently} bound in 30 days)"


class OrderTable(PortalTable):
    number = tables.Column(verbose_name="Order", linkify=("licensing:order_detail", [tables.A("number")]))
    order_date = tables.DateColumn(verbose_name="Order date", order_by=("ordered_on", "pk"))
    company = tables.Column(order_by=("company__name", "pk"))
    pack_count = tables.Column(verbose_name="Packs", order_by=("pack_count", "pk"))
    license_count = tables.Column(verbose_name="Licenses", order_by=("license_count", "pk"))
    eula = tables.Column(verbose_name="EULA", empty_values=(), order_by=("eula_accepted_at", "pk"))
    accept = tables.TemplateColumn(
        template_name="licensing/_order_accept_cell.html", verbose_name="", orderable=False, empty_values=()
    )

    class Meta:
        model = Order
        fields = ("number", "order_date", "company", "pack_count", "license_count", "eula", "accept")
        order_by = ("-order_date",)  # newest first; see the ``ordered_on`` sort key
        empty_text = "No orders."
        attrs = {"class": "table"}

    def __init__(self, *args, can_change=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_change = can_change

    def render_eula(self, record):
        if record.eula_accepted_at is None:
            return "Not accepted"
        at = formats.date_format(timezone.localtime(record.eula_accepted_at), "SHORT_DATETIME_FORMAT")
        return f"Accepted by {record.eula_accepted_by} at {at}"

    def render_company(self, record):
        return record.company.name


class SubscriptionKeyTable(PortalTable):
    key = tables.Column(verbose_name="Subscription key", order_by=("key", "pk"))
    company = tables.Column(order_by=("company__name", "pk"))
    products = tables.Column(verbose_name="Product", empty_values=(), orderable=False)
    license_count = tables.Column(verbose_name="Licenses", order_by=("license_count", "pk"))
    start = tables.DateColumn(verbose_name="Start", order_by=("starts_on", "pk"))
    expiration = tables.DateColumn(verbose_name="Expiration date", order_by=("expires_on", "pk"))
    pack_ids = tables.Column(verbose_name="Product Packs", empty_values=(), orderable=False)
    orders = tables.Column(verbose_name="Orders", empty_values=(), orderable=False)
    ald_token = tables.TemplateColumn(
        template_name="licensing/_subscription_key_ald_token.html",
        verbose_name="ALD token",
        orderable=False,
        empty_values=(),
    )

    class Meta:
        model = SubscriptionKey
        fields = (
            "key",
            "company",
            "products",
            "license_count",
            "start",
            "expiration",
            "pack_ids",
            "orders",
            "ald_token",
        )
        order_by = ("key",)
        empty_text = "No subscription keys."
        attrs = {"class": "table"}

    # ``live_packs`` is prefetched (merged packs left out), so no cell asks the database again.
    def render_company(self, record):
        return record.company.name

    def render_products(self, record):
        return ", ".join(sorted({p.product_name for p in record.live_packs})) or "—"

    def render_expiration(self, value, record):
        return formats.date_format(value, "SHORT_DATE_FORMAT") if value else self._perpetual(record)

    def value_expiration(self, value, record):
        return value.isoformat() if value else self._perpetual(record)

    def _perpetual(self, record):
        return "perpetual" if record.live_packs else "—"

    def render_pack_ids(self, record):
        return format_html_join(", ", "{}", ((pack_link(p.pack_id),) for p in record.live_packs)) or "—"

    def value_pack_ids(self, record):
        return ", ".join(p.pack_id for p in record.live_packs)

    def render_orders(self, record):
        numbers = sorted({p.order.number for p in record.live_packs if p.order_id})
        return (
            format_html_join(
                ", ",
                '<a href="{}">{}</a>',
                ((reverse("licensing:order_detail", args=[n]), n) for n in numbers),
            )
            or "—"
        )

    def value_orders(self, record):
        return ", ".join(sorted({p.order.number for p in record.live_packs if p.order_id}))

    def value_ald_token(self, record):
        current = getattr(record, "current", None)
        return f"{current[0].hint}…" if current else ""


class LicensePortalActionTable(PortalTable):
    at = tables.DateTimeColumn(verbose_name="When", order_by=("at", "pk"))
    actor = tables.Column(verbose_name="User", order_by=("actor", "pk"))
    action = tables.Column(order_by=("action", "pk"))
    pack_id = tables.Column(verbose_name="Pack ID", order_by=("pack_id", "pk"))
    related_packs = tables.Column(verbose_name="Other packs", orderable=False)
    order_number = tables.Column(verbose_name="Order", order_by=("order_number", "pk"))
    subscription_key = tables.Column(verbose_name="Subscription key", order_by=("subscription_key", "pk"))
    detail = tables.Column(orderable=False)

    class Meta:
        model = LicensePortalAction
        fields = (
            "at",
            "actor",
            "action",
            "pack_id",
            "related_packs",
            "order_number",
            "subscription_key",
            "detail",
        )
        order_by = ("-at",)
        empty_text = "No License Portal actions."
        attrs = {"class": "table"}

    def value_at(self, value):
        return local_time(value)

    def render_pack_id(self, value):
        return pack_link(value)

    def render_related_packs(self, record):
        return format_html_join(", ", "{}", ((pack_link(p),) for p in record.related_pack_ids)) or "—"

    def value_related_packs(self, record):
        return ", ".join(record.related_pack_ids)

    def render_order_number(self, value):
        return format_html('<a href="{}">{}</a>', reverse("licensing:order_detail", args=[value]), value)


class HardwareSlotTable(PortalTable):
    """*Search hardware* results: every slot (bound now or released) of the unit IDs found."""

    unit_id = tables.Column(verbose_name="Unit ID", order_by=("unit_id", "pk"))
    mac = tables.Column(verbose_name="MAC", empty_values=(), orderable=False)
    pack = tables.Column(verbose_name="Pack ID", order_by=("pack__pack_id", "pk"))
    product = tables.Column(
        verbose_name="Product", accessor="pack__product_name", order_by=("pack__product_name", "pk")
    )
    product_type = tables.Column(
        verbose_name="Product type", accessor="pack__product_type", order_by=("pack__product_type", "pk")
    )
    state = tables.Column(verbose_name="License", empty_values=(), orderable=False)
    bound_at = tables.DateTimeColumn(verbose_name="Assigned at", order_by=("bound_at", "pk"))
    released_at = tables.DateTimeColumn(
        verbose_name="Removed at", order_by=("released_at", "pk"), default="—"
    )
    released_by = tables.Column(verbose_name="Removed by", order_by=("released_by", "pk"), default="—")
    expiry = tables.DateColumn(
        verbose_name="License expiry",
        accessor="pack__expiry_date",
        default="perpetual",
        order_by=("pack__expiry_date", "pk"),
    )
    ums = tables.Column(verbose_name="UMS ID", order_by=("ums__name", "pk"), default="—")

    class Meta:
        model = LicenseSlot
        fields = (
            "unit_id",
            "mac",
            "pack",
            "product",
            "product_type",
            "state",
            "bound_at",
            "released_at",
            "released_by",
            "expiry",
            "ums",
        )
        order_by = ("-bound_at",)
        empty_text = "No license is or was bound to this unit ID or MAC."
        attrs = {"class": "table"}

    def __init__(self, *args, macs=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.macs = macs or {}

    def render_unit_id(self, value):
        return device_link(value)

    def value_bound_at(self, value):
        return local_time(value)

    def value_released_at(self, value):
        return local_time(value) or "—"

    def render_mac(self, record):
        return self.macs.get(record.unit_id, "—")

    def render_pack(self, record):
        return pack_link(record.pack.pack_id)

    def value_pack(self, record):
        return record.pack.pack_id

    def render_product_type(self, record):
        return record.pack.product_type

    def render_state(self, record):
        return "Bound" if record.released_at is None else "Removed"

    def render_released_by(self, value):
        return value or "—"
