from django.contrib import admin

from billing.discounts.models import COUPON_TERMS, Coupon


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    """Terms are read-only once created (the database refuses to change them); deactivate instead."""

    list_display = ["code", "name", "percent_off", "amount_off", "currency", "duration", "times_redeemed",
                    "max_redemptions", "expires_at", "active"]  # fmt: skip
    list_filter = ["active", "duration"]
    search_fields = ["code", "name"]
    filter_horizontal = ["tiers"]

    def get_readonly_fields(self, request, obj=None):
        return [*COUPON_TERMS, "times_redeemed"] if obj else ["times_redeemed"]

    def has_delete_permission(self, request, obj=None):
        return False
