from django.contrib import admin
from django.db.models import Case, When

from .directories import paths
from .forms import DeviceAdminForm
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceCommand,
    DeviceLicense,
    Directory,
    Firmware,
    ImiLoginFailure,
    ImiSession,
    LicenseRequest,
    LicenseWait,
    Notification,
    ReconciliationReport,
    RegisteredPack,
    UmsAldToken,
)


class DirectoryChoicesByPath:
    """Directory drop-downs name each directory by its path ("Berlin / Sales"): two directories of
    one name under different parents are otherwise indistinguishable."""

    directory_fields = ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in self.directory_fields and field is not None:
            ordered = paths()  # one query for the whole drop-down, which lists them in path order
            labels = dict(ordered)
            if ordered:  # (a CASE without a WHEN is a bare number, which ORDER BY reads as a column)
                position = Case(
                    *[When(pk=pk, then=i) for i, (pk, _) in enumerate(ordered)], default=len(ordered)
                )
                field.queryset = field.queryset.order_by(position, "pk")
            field.label_from_instance = lambda directory: labels.get(directory.pk, directory.name)
        return field


@admin.register(Directory)
class DirectoryAdmin(DirectoryChoicesByPath, admin.ModelAdmin):
    directory_fields = ("parent",)
    list_display = ("name", "id", "parent", "moved_to_bin")
    list_select_related = ("parent",)
    list_filter = ("moved_to_bin",)
    search_fields = ("name",)


@admin.register(Firmware)
class FirmwareAdmin(admin.ModelAdmin):
    list_display = ("product", "version", "firmware_type")
    list_filter = ("product", "firmware_type")
    search_fields = ("product", "version")


@admin.register(Device)
class DeviceAdmin(DirectoryChoicesByPath, admin.ModelAdmin):
    directory_fields = ("directory",)
    form = DeviceAdminForm
    list_display = ("name", "unit_id", "mac", "directory", "firmware", "last_ip", "site", "moved_to_bin")
    list_filter = ("moved_to_bin", "firmware", "directory", "site")
    search_fields = ("name", "unit_id", "mac", "last_ip", "serial_number")
    list_select_related = ("directory", "firmware")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # a registration, in the device's executed actions as the IMI's is
            where = dict(paths()).get(obj.directory_id, "the root directory")
            DeploymentEvent.objects.create(
                actor=request.user.get_username(),
                action=DeploymentEvent.Action.DEVICE_CREATED,
                device=obj,
                unit_id=obj.unit_id,
                message=f"Device {obj.name} ({obj.mac}) created in the Django admin in {where}"[:500],
            )


@admin.register(DeploymentSettings)
class DeploymentSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days")
    list_filter = ("ald_enabled", "exchange_enabled")
    search_fields = ("ums_id_name",)
    # The UMS ID private key and the proxy password are never shown or edited here.
    exclude = ("proxy_password",)

    def has_add_permission(self, request):
        return not DeploymentSettings.objects.exists()


@admin.register(RegisteredPack)
class RegisteredPackAdmin(admin.ModelAdmin):
    list_display = (
        "pack_id",
        "product_type",
        "total",
        "used",
        "expiry_date",
        "distribution_method",
        "active",
        "registered_at",
    )
    list_filter = ("product_type", "distribution_method", "active")
    search_fields = ("pack_id", "product_name")
    filter_horizontal = ("condition_directories",)
    readonly_fields = ("total", "used", "ils_status", "ils_usable", "refreshed_at")


@admin.register(DeviceLicense)
class DeviceLicenseAdmin(admin.ModelAdmin):
    list_display = (
        "unit_id",
        "device",
        "service",
        "pack_id",
        "expires_at",
        "is_demo",
        "source",
        "status",
        "issued_at",
    )
    list_filter = ("service", "status", "source", "is_demo")
    search_fields = ("unit_id", "pack_id", "device__name")
    list_select_related = ("device",)
    raw_id_fields = ("device",)
    readonly_fields = ("license_file",)  # signed by the licensing service; an edit would break it


@admin.register(LicenseWait)
class LicenseWaitAdmin(admin.ModelAdmin):
    list_display = ("device", "service", "reason", "since", "last_tried_at")
    list_filter = ("service", "reason")
    search_fields = ("device__name", "device__unit_id")
    list_select_related = ("device",)


@admin.register(LicenseRequest)
class LicenseRequestAdmin(admin.ModelAdmin):
    list_display = ("device", "service", "pack_id", "claimed_until", "created_at")
    list_filter = ("service",)
    search_fields = ("device__unit_id", "pack_id")
    list_select_related = ("device",)


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "outcome", "unit_id", "pack_id", "service", "message")
    list_filter = ("action", "outcome", "service")
    search_fields = ("unit_id", "pack_id", "message", "actor")

    # Executed actions are history: appended, never edited.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "level", "key", "resolved_at")
    list_filter = ("kind", "level")
    search_fields = ("key", "subject")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(admin.ModelAdmin):
    list_display = ("at", "__str__")
    list_filter = ("at",)
    search_fields = ("slots_without_license",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeviceCommand)
class DeviceCommandAdmin(admin.ModelAdmin):
    list_display = ("at", "command", "device", "actor", "exec_id", "state")
    list_filter = ("command", "state")
    search_fields = ("device__name", "device__unit_id", "actor", "exec_id")
    list_select_related = ("device",)

    # A record of what was sent: never edited.
    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UmsAldToken)
class UmsAldTokenAdmin(admin.ModelAdmin):
    # the token itself is a credential: only its first characters are shown
    list_display = ("hint", "registered_at", "registered_by")
    search_fields = ("hint", "registered_by")
    exclude = ("token",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ImiSession)
class ImiSessionAdmin(admin.ModelAdmin):
    list_display = ("user", "address", "created_at", "last_seen_at")
    search_fields = ("user__username", "address")
    list_select_related = ("user",)
    exclude = ("key_hash",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(ImiLoginFailure)
class ImiLoginFailureAdmin(admin.ModelAdmin):
    """Addresses with failed IMI logins; deleting a row lifts its lock-out."""

    list_display = ("address", "failures", "last_failure_at", "locked_until", "last_username")
    search_fields = ("address", "last_username")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
