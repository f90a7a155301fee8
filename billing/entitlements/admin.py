from django.contrib import admin

from billing.entitlements.models import CustomerApiKey, EntitlementOverride, Lease, UsageCounter
from billing.entitlements.services import invalidate_on_commit
from billing.memberships.admin import CustomerAdmin as MembershipsCustomerAdmin
from billing.memberships.admin import MembershipInline
from billing.memberships.models import Customer


class OverrideInline(admin.TabularInline):
    model = EntitlementOverride
    extra = 0
    fields = [
        "feature",
        "enabled",
        "limit_value",
        "unlimited",
        "rate_limit",
        "rate_window_seconds",
        "expires_at",
        "note",
    ]


class CustomerAdmin(MembershipsCustomerAdmin):
    """The customer page with its entitlement overrides (memberships cannot import them)."""

    inlines = [MembershipInline, OverrideInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        invalidate_on_commit(form.instance.external_id)


admin.site.unregister(Customer)
admin.site.register(Customer, CustomerAdmin)


class InvalidatingAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        invalidate_on_commit(obj.customer.external_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        invalidate_on_commit(obj.customer.external_id)


@admin.register(EntitlementOverride)
class EntitlementOverrideAdmin(InvalidatingAdmin):
    list_display = [
        "customer",
        "feature",
        "enabled",
        "limit_value",
        "unlimited",
        "rate_limit",
        "expires_at",
        "note",
    ]
    search_fields = ["customer__external_id", "feature__code"]
    raw_id_fields = ["customer"]


@admin.register(UsageCounter)
class UsageCounterAdmin(admin.ModelAdmin):
    list_display = ["customer", "feature", "value", "updated_at"]
    search_fields = ["customer__external_id", "feature__code"]
    readonly_fields = ["customer", "feature", "value", "updated_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "feature", "acquired_at", "expires_at", "released_at"]
    search_fields = ["customer__external_id"]
    readonly_fields = ["customer", "feature", "acquired_at", "expires_at", "released_at"]

    def has_add_permission(self, request):
        return False


@admin.register(CustomerApiKey)
class CustomerApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "customer", "name", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "customer__external_id"]
    readonly_fields = ["customer", "name", "prefix", "created_at", "last_used_at", "revoked_at", "rotated_to"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):
        return False
