import django_tables2 as tables

from .models import ProductPack


class PackTable(tables.Table):
    pack_id = tables.Column(verbose_name="Pack ID")
    product_name = tables.Column(verbose_name="Product")
    status = tables.Column(verbose_name="Status", empty_values=(), orderable=False)
    total_licenses = tables.Column(verbose_name="Total")
    used = tables.Column()
    free = tables.Column(empty_values=(), orderable=False)
    utilization = tables.TemplateColumn(
        template_name="includes/utilization_cell.html",
        verbose_name="Consumption",
        orderable=False,
        empty_values=(),
    )
    expiry_date = tables.DateColumn(verbose_name="Expiry", default="perpetual")
    subscription_key = tables.Column(verbose_name="Subscription key")
    assigned_ums = tables.Column(verbose_name="UMS ID")

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
