"""The ledger in the admin: read-only (the journal is append-only; corrections are reversals posted
through billing.ledger.services.ledger_reverse)."""

from django.contrib import admin

from billing.ledger.models import AccountBalance, JournalEntry, JournalTransaction, LedgerAccount


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BalanceInline(admin.TabularInline):
    model = AccountBalance
    fields = ("currency", "balance", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnly):
    list_display = ("code", "kind", "name", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    inlines = [BalanceInline]


class EntryInline(admin.TabularInline):
    model = JournalEntry
    fields = ("account", "currency", "amount", "balance_after")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JournalTransaction)
class JournalTransactionAdmin(ReadOnly):
    list_display = ("id", "source", "source_id", "description", "occurred_at", "reverses")
    list_filter = ("source",)
    search_fields = ("source_id", "description")
    date_hierarchy = "occurred_at"
    readonly_fields = (
        "source",
        "source_id",
        "description",
        "occurred_at",
        "created_at",
        "reverses",
        "metadata",
    )
    inlines = [EntryInline]
