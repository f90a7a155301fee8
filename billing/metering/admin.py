from django.contrib import admin

from billing.metering.credit_models import (
    AiPrice,
    AiUsage,
    BurnRate,
    CreditAlert,
    CreditGrant,
    CreditLedgerEntry,
    CreditRequirement,
)
from billing.metering.models import Meter
from billing.metering.sync_models import MeterSyncReport, MeterSyncRun, MeterSyncState, SandboxUsageReport


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "event_type", "aggregation", "value_property", "feature", "active"]
    list_filter = ["aggregation", "active"]
    search_fields = ["code", "name", "event_type"]
    # the definition is fixed once created: its rollups were aggregated by it
    readonly_fields = [
        "code",
        "event_type",
        "aggregation",
        "value_property",
        "filters",
        "allow_negative",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False  # meters are created through the API or the catalog (they back-fill their rollups)

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MeterSyncRun)
class MeterSyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "status",
        "trigger",
        "customers",
        "reports",
        "units",
        "failures",
        "duration",
    ]
    list_filter = ["status", "trigger"]
    readonly_fields = [
        "started_at", "finished_at", "duration", "status", "trigger", "customers", "reports", "units", "failures",
        "errors", "error",
    ]  # fmt: skip


@admin.register(MeterSyncState)
class MeterSyncStateAdmin(ReadOnlyAdmin):
    list_display = [
        "customer",
        "meter",
        "period_start",
        "period_end",
        "usage",
        "covered",
        "reported",
        "closed_at",
    ]
    list_filter = ["meter"]
    search_fields = ["customer__external_id"]
    list_select_related = ["customer", "meter"]


@admin.register(MeterSyncReport)
class MeterSyncReportAdmin(ReadOnlyAdmin):
    list_display = [
        "identifier",
        "customer",
        "meter",
        "quantity",
        "provider",
        "status",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "provider", "meter"]
    search_fields = ["identifier", "customer__external_id"]
    list_select_related = ["customer", "meter"]


@admin.register(SandboxUsageReport)
class SandboxUsageReportAdmin(ReadOnlyAdmin):
    list_display = ["identifier", "customer", "meter", "quantity", "period_start", "created_at"]
    search_fields = ["identifier", "customer"]


@admin.register(CreditGrant)
class CreditGrantAdmin(ReadOnlyAdmin):
    """Grants are made through the API (or the tier allowance job): amounts live in the ledger."""

    list_display = [
        "customer",
        "source",
        "amount",
        "remaining",
        "priority",
        "effective_at",
        "expires_at",
        "reference",
    ]
    list_filter = ["source"]
    search_fields = ["customer__external_id", "reference"]


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: the database refuses changes; corrections are new entries."""

    list_display = ["created_at", "customer", "kind", "amount", "overage", "balance_after", "reference"]
    list_filter = ["kind"]
    search_fields = ["customer__external_id", "reference"]


class AppendOnlyAdmin(admin.ModelAdmin):
    """Prices change by adding a row effective from a time (history is kept; the database refuses edits)."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BurnRate)
class BurnRateAdmin(AppendOnlyAdmin):
    list_display = ["meter", "credits_per_unit", "effective_from", "created_at"]


@admin.register(AiPrice)
class AiPriceAdmin(AppendOnlyAdmin):
    list_display = ["provider", "model", "input_per_1k", "output_per_1k", "effective_from"]
    list_filter = ["provider"]


@admin.register(AiUsage)
class AiUsageAdmin(ReadOnlyAdmin):
    list_display = [
        "hour",
        "customer",
        "provider",
        "model",
        "events",
        "input_tokens",
        "output_tokens",
        "credits",
    ]
    list_filter = ["provider", "model"]


@admin.register(CreditRequirement)
class CreditRequirementAdmin(admin.ModelAdmin):
    """A feature that needs a minimum balance (micro-credits); saving rebuilds every snapshot."""

    list_display = ["feature", "minimum"]

    def save_model(self, request, obj, form, change):
        from billing.metering.credits import credit_requirement_set

        obj.pk = credit_requirement_set(feature_code=obj.feature.code, minimum=obj.minimum).pk

    def delete_model(self, request, obj):
        from billing.metering.signals import snapshots_stale

        super().delete_model(request, obj)
        snapshots_stale.send(sender=CreditRequirement, customers=None)


@admin.register(CreditAlert)
class CreditAlertAdmin(admin.ModelAdmin):
    """Balances crossing a threshold (micro-credits) downwards publish `credits.low`."""

    list_display = ["threshold"]
