from django.contrib import admin

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
