from django.contrib import admin
from django.db import transaction

from billing.tiers.models import PRICE_TERMS, Feature, Price, Tier, TierFeature
from billing.tiers.signals import catalog_changed
from kernel.money import format_amount


def _catalog_changed() -> None:
    catalog_changed.send(sender=Tier)
    transaction.on_commit(lambda: catalog_changed.send(sender=Tier))


class CatalogAdmin(admin.ModelAdmin):
    """Every catalog edit in the admin invalidates cached entitlement snapshots."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _catalog_changed()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        _catalog_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        _catalog_changed()


class TierFeatureInline(admin.TabularInline):
    model = TierFeature
    extra = 0
    autocomplete_fields = ["feature"]


class PriceInline(admin.TabularInline):
    """Terms are read-only (the database refuses to change them); add prices on the Price page."""

    model = Price
    extra = 0
    fields = ["code", "amount", "interval", "model", "trial_days", "active"]
    readonly_fields = ["code", "amount", "interval", "model", "trial_days"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Amount")
    def amount(self, obj):
        return format_amount(obj.unit_amount, obj.currency)


@admin.register(Tier)
class TierAdmin(CatalogAdmin):
    list_display = ["code", "name", "is_public", "is_default", "sort_order", "creator"]
    list_filter = ["is_public", "is_default"]
    search_fields = ["code", "name"]
    inlines = [TierFeatureInline, PriceInline]


@admin.register(Feature)
class FeatureAdmin(CatalogAdmin):
    list_display = ["code", "name", "kind", "unit"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]


@admin.register(Price)
class PriceAdmin(CatalogAdmin):
    list_display = ["tier", "code", "amount", "interval", "model", "trial_days", "active", "created_at"]
    list_filter = ["active", "interval", "model", "currency"]
    search_fields = ["code", "tier__code"]

    def get_readonly_fields(self, request, obj=None):
        return PRICE_TERMS if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Amount")
    def amount(self, obj):
        return format_amount(obj.unit_amount, obj.currency)
