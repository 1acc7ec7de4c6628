from django.contrib import admin

from .models import (
    AldToken,
    Company,
    IlsRequest,
    LicensePortalAction,
    LicenseSlot,
    Order,
    PackSizeChange,
    ProductPack,
    SubscriptionKey,
    UmsId,
)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "global_account_id")
    search_fields = ("name", "global_account_id")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "company", "order_date", "eula_accepted_by", "eula_accepted_at")
    list_select_related = ("company",)
    list_filter = ("company", ("eula_accepted_at", admin.EmptyFieldListFilter))
    search_fields = ("number",)


@admin.register(SubscriptionKey)
class SubscriptionKeyAdmin(admin.ModelAdmin):
    list_display = ("key", "company")
    list_select_related = ("company",)
    list_filter = ("company",)
    search_fields = ("key",)


@admin.register(UmsId)
class UmsIdAdmin(admin.ModelAdmin):
    list_display = ("name", "fingerprint", "company", "auto_assign", "registered_at", "last_contact_at")
    list_select_related = ("company",)
    list_filter = ("company", "auto_assign")
    search_fields = ("name", "fingerprint")


@admin.register(ProductPack)
class ProductPackAdmin(admin.ModelAdmin):
    list_display = (
        "pack_id",
        "product_name",
        "product_type",
        "total_licenses",
        "used",
        "start_date",
        "expiry_date",
        "status",
        "assigned_ums",
    )
    list_filter = ("product_type", "status", "company", "assigned_ums")
    search_fields = ("pack_id", "product_name", "subscription_key__key", "comment")
    list_select_related = ("assigned_ums",)
    # The used counter moves only through the allocation service.
    readonly_fields = ("used", "service", "merged_into")

    def get_readonly_fields(self, request, obj=None):
        # An existing pack changes size only by split, merge or import, which keep its size history.
        if obj is not None:
            return (*self.readonly_fields, "total_licenses")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save(size_change={"actor": request.user.get_username(), "detail": "added in the admin"})
            return
        # Write only what the form changed: a full save would put back the counters as they were
        # read, undoing allocations made meanwhile.
        fields = [f for f in form.changed_data if f in {fl.name for fl in obj._meta.concrete_fields}]
        if {"pack_id", "product_type"} & set(fields):
            fields.append("service")
        if fields:
            obj.save(update_fields=fields)


@admin.register(PackSizeChange)
class PackSizeChangeAdmin(admin.ModelAdmin):
    list_display = ("pack", "at", "old_total", "new_total", "reason", "actor", "detail")
    list_filter = ("reason",)
    search_fields = ("pack__pack_id", "actor", "detail")
    list_select_related = ("pack",)

    # The size history is appended by the pack operations and never edited.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LicenseSlot)
class LicenseSlotAdmin(admin.ModelAdmin):
    list_display = ("pack", "unit_id", "ums", "bound_at", "released_at", "released_by")
    list_filter = ("pack__product_type", ("released_at", admin.EmptyFieldListFilter))
    search_fields = ("unit_id", "pack__pack_id")
    list_select_related = ("pack", "ums")

    # Slots are bound and released by the licensing service only, so the counters stay right.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by their services: listed and searchable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LicensePortalAction)
class LicensePortalActionAdmin(ReadOnlyAdmin):
    """History: read, never edited."""

    list_display = ("at", "actor", "action", "pack_id", "order_number", "subscription_key", "detail")
    list_filter = ("action", "actor")
    search_fields = ("pack_id", "related_packs", "order_number", "subscription_key", "detail", "actor")
    date_hierarchy = "at"


@admin.register(AldToken)
class AldTokenAdmin(ReadOnlyAdmin):
    # the hash is not shown: it identifies a live credential
    list_display = (
        "hint",
        "subscription_key",
        "created_at",
        "created_by",
        "revoked_at",
        "revoked_by",
        "last_used_at",
    )
    list_select_related = ("subscription_key",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("hint", "subscription_key__key")
    exclude = ("token_hash",)


@admin.register(IlsRequest)
class IlsRequestAdmin(ReadOnlyAdmin):
    list_display = ("at", "caller", "idempotency_key", "status_code")
    list_filter = ("status_code",)
    search_fields = ("caller", "idempotency_key")
