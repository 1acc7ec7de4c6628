import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ald_portal.tables import PortalTable

from .directories import paths
from .models import DeploymentEvent, Device, DeviceLicense, DistributionMethod, RegisteredPack


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

    def __init__(self, *args, directory_paths=None, **kwargs):
        super().__init__(*args, **kwargs)
        # the paths of all directories (the list's filter has them already), one query at most
        self._directory_paths = dict(directory_paths if directory_paths is not None else paths())

    def render_directory(self, value, record):
        """The directory's path ("Berlin / Sales"): two of one name in different places look alike
        otherwise."""
        return self._directory_paths.get(record.directory_id, value.name)

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
    # header-less: an action column, left out of exports; kept on one line
    toggle = tables.TemplateColumn(
        template_name="devices/pack_toggle_cell.html",
        verbose_name="",
        orderable=False,
        empty_values=(),
        attrs={"td": {"class": "actions"}},
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
        if names:
            return ", ".join(names)
        if record.distribution_method == DistributionMethod.CONDITIONS:
            return "no directory: deploys to no device"  # say so, or it looks switched on
        return "—"


class DeploymentEventTable(PortalTable):
    unit_id = tables.Column(verbose_name="Unit ID")
    pack_id = tables.Column(verbose_name="Pack ID")

    class Meta:
        model = DeploymentEvent
        fields = ("at", "actor", "action", "outcome", "unit_id", "pack_id", "service", "message")
        attrs = {"class": "table"}
        orderable = False


class DeviceLicenseTable(PortalTable):
    """Device Licenses: one row per license deployed to a device."""

    unit_id = tables.Column(verbose_name="Unit ID", order_by=("unit_id", "pk"))
    device = tables.Column(
        accessor="device__name",
        verbose_name="Device",
        order_by=("device__name", "pk"),
        linkify=("devices:device_detail", {"pk": tables.A("device_id")}),
    )
    service = tables.Column(order_by=("service", "pk"))
    pack_id = tables.Column(verbose_name="Pack ID", order_by=("pack_id", "pk"))
    expires_at = tables.DateColumn(verbose_name="Expiry", default="perpetual", order_by=("expires_at", "pk"))
    expiry_state = tables.Column(verbose_name="State", order_by=("expiry_state", "pk"))
    is_demo = tables.BooleanColumn(verbose_name="Demo", order_by=("is_demo", "pk"))
    source = tables.Column(order_by=("source", "pk"))
    status = tables.Column(order_by=("status", "pk"))
    issued_at = tables.DateTimeColumn(verbose_name="Registered on", order_by=("issued_at", "pk"))

    class Meta:
        model = DeviceLicense
        fields = (
            "unit_id",
            "device",
            "service",
            "pack_id",
            "expires_at",
            "expiry_state",
            "is_demo",
            "source",
            "status",
            "issued_at",
        )
        attrs = {"class": "table"}

    def render_expires_at(self, value, record):
        if record.expiry_state in ("grace", "expired"):
            return format_html('<span class="expired">{}</span>', value)
        return value

    def render_expiry_state(self, value):
        return format_html('<span class="badge badge-state-{}">{}</span>', value, value.capitalize())

    def value_expiry_state(self, value):
        return value

    def value_expires_at(self, value):
        return value

    def value_is_demo(self, value):
        return "yes" if value else "no"


class ExecutedActionTable(PortalTable):
    """The executed-actions page: every column sorts, ties broken by the primary key."""

    at = tables.DateTimeColumn(verbose_name="At", order_by=("at", "pk"))
    actor = tables.Column(verbose_name="By", order_by=("actor", "pk"))
    action = tables.Column(order_by=("action", "pk"))
    outcome = tables.Column(order_by=("outcome", "pk"))
    device = tables.Column(
        accessor="device__name",
        verbose_name="Device",
        order_by=("device__name", "pk"),
        linkify=lambda record: (
            reverse("devices:device_detail", args=[record.device_id]) if record.device_id else None
        ),
    )
    unit_id = tables.Column(verbose_name="Unit ID", order_by=("unit_id", "pk"))
    pack_id = tables.Column(verbose_name="Pack ID", order_by=("pack_id", "pk"))
    service = tables.Column(order_by=("service", "pk"))
    message = tables.Column(order_by=("message", "pk"))

    class Meta:
        model = DeploymentEvent
        fields = ("at", "actor", "action", "outcome", "device", "unit_id", "pack_id", "service", "message")
        attrs = {"class": "table"}
