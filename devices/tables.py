import django_tables2 as tables
from django.utils.html import format_html, format_html_join

from ald_portal.tables import PortalTable

from .models import DeploymentEvent, Device, RegisteredPack


class DeviceTable(PortalTable):
    device = tables.CheckBoxColumn(
        accessor="pk",
        orderable=False,
        attrs={
            "th__input": {"aria-label": "Select all devices on this page"},
            "td__input": {"aria-label": "Select this device"},
        },
    )
    # Every sort ends on the primary key, so pages never repeat or skip a row.
    name = tables.Column(order_by=("name", "pk"), linkify=("devices:device_detail", {"pk": tables.A("pk")}))
    unit_id = tables.Column(verbose_name="Unit ID", order_by=("unit_id",))
    mac = tables.Column(verbose_name="MAC", order_by=("mac", "pk"))
    directory = tables.Column(order_by=("directory__name", "pk"))
    firmware = tables.Column(order_by=("firmware__version_key", "pk"))
    last_ip = tables.Column(verbose_name="Last IP", order_by=("last_ip", "pk"))
    site = tables.Column(order_by=("site", "pk"))
    license_state = tables.Column(verbose_name="License state", order_by=("license_state", "pk"))
    licenses = tables.Column(verbose_name="Licenses", empty_values=(), orderable=False)

    class Meta:
        model = Device
        fields = (
            "device",
            "name",
            "unit_id",
            "mac",
            "directory",
            "firmware",
            "last_ip",
            "site",
            "license_state",
            "licenses",
        )
        attrs = {"class": "table"}

    def render_license_state(self, value, record):
        badge = format_html('<span class="badge badge-{}">{}</span>', value, value.capitalize())
        if record.current_waits:
            held = {lic.service for lic in record.current_licenses}
            reasons = format_html_join(
                ", ",
                "{}: {}{}",
                (
                    (w.service, "exchange pending, " if w.service in held else "", w.get_reason_display())
                    for w in record.current_waits
                ),
            )
            return format_html('{} <small class="muted">{}</small>', badge, reasons)
        if record.moved_to_bin:
            return format_html('{} <small class="muted">in recycle bin</small>', badge)
        if record.ald_excluded:
            return format_html(
                '{} <small class="muted">excluded from ALD: {}</small>', badge, record.ald_excluded_reason
            )
        return badge

    def render_licenses(self, record):
        if not record.current_licenses:
            return "—"
        return format_html_join(
            ", ",
            '<span title="expires {}">{} ({}){}</span>',
            (
                (lic.expires_at or "never", lic.service, lic.pack_id, " demo" if lic.is_demo else "")
                for lic in record.current_licenses
            ),
        )


class RegisteredPackTable(PortalTable):
    pack_id = tables.Column(verbose_name="Pack ID")
    utilization = tables.TemplateColumn(
        template_name="includes/utilization_cell.html",
        verbose_name="Consumption",
        orderable=False,
        empty_values=(),
    )
    free = tables.Column(empty_values=(), orderable=False)
    expiry_date = tables.DateColumn(verbose_name="Expiry", default="perpetual")
    conditions = tables.Column(verbose_name="Conditions", empty_values=(), orderable=False)
    active = tables.BooleanColumn()
    toggle = tables.TemplateColumn(
        template_name="devices/pack_toggle_cell.html", verbose_name="", orderable=False, empty_values=()
    )

    class Meta:
        model = RegisteredPack
        fields = (
            "pack_id",
            "product_name",
            "product_type",
            "total",
            "used",
            "free",
            "utilization",
            "expiry_date",
            "ils_status",
            "distribution_method",
            "conditions",
            "active",
            "registered_at",
            "comment",
            "toggle",
        )
        attrs = {"class": "table"}
        orderable = False

    def render_free(self, record):
        return record.free

    def render_conditions(self, record):
        names = [d.name for d in record.condition_directories.all()]
        return ", ".join(names) if names else "—"


class DeploymentEventTable(PortalTable):
    class Meta:
        model = DeploymentEvent
        fields = ("at", "actor", "action", "outcome", "unit_id", "pack_id", "service", "message")
        attrs = {"class": "table"}
        orderable = False
