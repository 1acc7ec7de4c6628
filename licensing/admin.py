from django.contrib import admin

from .models import Company, LicenseSlot, Order, ProductPack, SubscriptionKey, UmsId


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
    list_display = ("name", "fingerprint", "company", "auto_assign", "registered_at")
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
    readonly_fields = ("used", "service")


@admin.register(LicenseSlot)
class LicenseSlotAdmin(admin.ModelAdmin):
    list_display = ("pack", "unit_id", "ums", "bound_at", "released_at")
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
