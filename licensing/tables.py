import django_tables2 as tables
from django.utils.html import format_html

from ald_portal.tables import PortalTable

from .models import LicenseSlot, PackSizeChange, ProductPack


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
    ums = tables.Column(verbose_name="UMS ID", order_by=("ums__name", "pk"), default="—")
    remove = tables.Column(verbose_name="Remove", empty_values=(), orderable=False)

    class Meta:
        model = LicenseSlot
        fields = ("unit_id", "bound_at", "ums", "remove")
        order_by = ("unit_id",)
        empty_text = "No license of this pack is bound to a unit ID."
        attrs = {"class": "table"}

    def __init__(self, *args, ticked=(), disabled=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticked, self.disabled = set(ticked), disabled

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
