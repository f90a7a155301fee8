from django.contrib import admin, messages

from billing.invoicing.models import (
    TAX_RATE_TERMS,
    CreditNote,
    CreditValue,
    Invoice,
    InvoiceLine,
    InvoiceNumbering,
    TaxRate,
)
from billing.invoicing.services import invoice_finalize, invoice_mark_uncollectible, invoice_void
from kernel.errors import ApplicationError


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = [
        "kind",
        "description",
        "quantity",
        "unit_amount",
        "amount",
        "meter",
        "period_start",
        "period_end",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CreditNoteInline(admin.TabularInline):
    """Read-only: credit notes are issued through the API (credit_note_create) and frozen."""

    model = CreditNote
    fk_name = "invoice"
    extra = 0
    can_delete = False
    fields = ["number", "amount", "pre_payment_amount", "refund_amount", "credit_amount", "reason", "status",
              "origin", "provider_refund_id", "created_at"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Read-only: invoices change only through the billing engine's services (the actions below)."""

    list_display = ["__str__", "customer", "status", "currency", "total", "amount_paid", "created_at"]
    list_filter = ["status", "collected_by", "billing_reason", "currency"]
    search_fields = ["number", "customer__external_id", "customer__email"]
    date_hierarchy = "created_at"
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["finalize", "void", "uncollectible"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _run(self, request, queryset, service, verb):
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                service(invoice_id=pk)
                done += 1
            except ApplicationError as exc:  # one refused invoice must not stop the others; staff see why
                messages.error(request, f"Invoice {pk}: {exc.message}")
        messages.success(request, f"{done} invoice(s) {verb}.")

    @admin.action(description="Finalize selected drafts")
    def finalize(self, request, queryset):
        self._run(request, queryset, invoice_finalize, "finalized")

    @admin.action(description="Void selected invoices")
    def void(self, request, queryset):
        self._run(request, queryset, invoice_void, "voided")

    @admin.action(description="Mark selected invoices uncollectible")
    def uncollectible(self, request, queryset):
        self._run(request, queryset, invoice_mark_uncollectible, "marked uncollectible")


@admin.register(InvoiceNumbering)
class InvoiceNumberingAdmin(admin.ModelAdmin):
    """The prefix may change; the next number only moves forward through finalization."""

    list_display = ["prefix", "next_number"]
    readonly_fields = ["next_number"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    """Terms are read-only once created (the database refuses to change them); deactivate instead."""

    list_display = ["name", "percent", "inclusive", "country", "active", "created_at"]
    list_filter = ["active", "inclusive", "country"]

    def get_readonly_fields(self, request, obj=None):
        return TAX_RATE_TERMS if obj else []

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditValue)
class CreditValueAdmin(admin.ModelAdmin):
    """Where credits pay for usage: what one credit pays in each currency (minor units)."""

    list_display = ["currency", "unit_amount_decimal", "updated_at"]
