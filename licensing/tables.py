import django_tables2 as tables

from .models import ProductPack


class PackTable(tables.Table):
    # Every sort ends on the primary key, so pages never repeat or skip a pack.
    pack_id = tables.Column(verbose_name="Pack ID")
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
