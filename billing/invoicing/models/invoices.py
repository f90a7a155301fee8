"""Invoices: what a customer owes for a period, in integer minor units of one currency.

A draft can be rebuilt; finalizing gives it the tenant's next gapless number and freezes it: the
database refuses any UPDATE of a finalized invoice's number, customer, currency, period or amounts
(paid/credited amounts and the status may still move), any DELETE of a finalized invoice, and any
change to a finalized invoice's lines. Corrections are credit notes.
"""

import pgtrigger
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


# the staff list's sort keys, in the database: the day an invoice was issued (finalized; created, for
# drafts) and what is still owed on it (Invoice.amount_due); each has an index on (it, id)
ISSUED_AT = Coalesce("finalized_at", "created_at")
AMOUNT_DUE = Case(
    When(status="open", then=Greatest(F("total") - F("amount_paid") - F("amount_credited"), Value(0))),
    default=Value(0),
    output_field=models.BigIntegerField(),
)


class BillingReason(models.TextChoices):
    SUBSCRIPTION_CREATE = "subscription_create", "New subscription"
    SUBSCRIPTION_CYCLE = "subscription_cycle", "Renewal"
    SUBSCRIPTION_UPDATE = "subscription_update", "Plan change"
    MANUAL = "manual", "Manual"


class CollectedBy(models.TextChoices):
    ENGINE = "engine", "Our engine (charges a saved method)"
    PROVIDER = "provider", "The payment provider (mirrored from its webhooks)"


class LineKind(models.TextChoices):
    FEE = "fee", "Fee"
    USAGE = "usage", "Usage"
    PRORATION = "proration", "Proration"
    ADJUSTMENT = "adjustment", "Adjustment"


class InvoiceNumbering(models.Model):
    """The tenant's invoice number sequence (a single row). Gapless: a number is taken under this
    row's lock in the transaction that finalizes the invoice, so a rollback gives it back."""

    prefix = models.CharField(max_length=20)
    next_number = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.prefix}-{self.next_number:06d}"


FROZEN = (
    "number", "customer_id", "currency", "subtotal", "discount", "tax", "total", "period_start",
    "period_end", "collected_by", "billing_reason", "credits_applied", "credits_used",
)  # fmt: skip


@pgtrigger.register(
    pgtrigger.Protect(
        name="invoice_finalized_frozen",
        operation=pgtrigger.Update,
        condition=pgtrigger.Condition(
            "OLD.status <> 'draft' AND ("
            + ", ".join(f"OLD.{f}" for f in FROZEN)
            + ") IS DISTINCT FROM ("
            + ", ".join(f"NEW.{f}" for f in FROZEN)
            + ")"
        ),
    ),
    pgtrigger.Protect(
        name="invoice_finalized_no_delete",
        operation=pgtrigger.Delete,
        condition=pgtrigger.Condition("OLD.status <> 'draft'"),
    ),
)
class Invoice(models.Model):
    """One customer's bill in one currency. `period_key` makes the invoice of a membership's period
    unique (closing a period twice finds the first invoice); `provider_invoice_id` does the same for
    invoices mirrored from a provider. `customer_details` is the customer as billed (name, email,
    address), kept when the customer changes later."""

    customer = models.ForeignKey("memberships.Customer", on_delete=models.PROTECT, related_name="invoices")
    membership = models.ForeignKey(
        "memberships.Membership", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    number = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    discount = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    # what the customer's credits paid of the usage lines (minor units; not in `discount`), and the
    # micro-credits that took (billing.invoicing.adjustments)
    credits_applied = models.BigIntegerField(default=0)
    credits_used = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    amount_credited = models.BigIntegerField(default=0)
    billing_reason = models.CharField(
        max_length=24, choices=BillingReason.choices, default=BillingReason.MANUAL
    )
    collected_by = models.CharField(max_length=10, choices=CollectedBy.choices, default=CollectedBy.ENGINE)
    provider = models.CharField(max_length=16, blank=True)
    provider_invoice_id = models.CharField(max_length=255, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    period_key = models.CharField(max_length=120, blank=True)
    customer_details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # our gapless numbers are unique; a mirrored invoice keeps its provider's number, which
            # our sequence never issues (and two providers may both have issued)
            models.UniqueConstraint(
                fields=["number"],
                condition=~Q(number="") & Q(collected_by="engine"),
                name="invoicing_invoice_number",
            ),
            models.UniqueConstraint(
                fields=["period_key"], condition=~Q(period_key=""), name="invoicing_invoice_period"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_invoice_id"],
                condition=~Q(provider_invoice_id=""),
                name="invoicing_invoice_provider_id",
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0)
                & Q(discount__gte=0)
                & Q(tax__gte=0)
                & Q(total__gte=0)
                & Q(credits_applied__gte=0)
                & Q(credits_used__gte=0),
                name="invoicing_invoice_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_credited__gte=0),
                name="invoicing_invoice_settled_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="invoicing_invoice_currency"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | ~Q(number=""), name="invoicing_invoice_finalized_numbered"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-id"], name="invoicing_invoice_customer"),
            # the open ones, oldest due first (the overview's invoices that need attention)
            models.Index(
                fields=["due_at", "id"], condition=Q(status="open"), name="invoicing_invoice_open_due"
            ),
            # the staff list's orders (billing.invoicing.pages): a page of 25 walks one index
            models.Index(ISSUED_AT, F("id"), name="invoicing_invoice_issued"),
            models.Index(fields=["number", "id"], name="invoicing_invoice_number_id"),
            models.Index(fields=["total", "id"], name="invoicing_invoice_total_id"),
            models.Index(AMOUNT_DUE, F("id"), name="invoicing_invoice_due_id"),
            models.Index(fields=["status", "id"], name="invoicing_invoice_status_id"),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"

    @property
    def amount_due(self) -> int:
        if self.status != InvoiceStatus.OPEN:
            return 0
        return max(self.total - self.amount_paid - self.amount_credited, 0)


@pgtrigger.register(
    pgtrigger.Trigger(
        name="invoice_line_frozen_with_invoice",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        func="""
        IF (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft' THEN
            RAISE EXCEPTION 'the lines of a finalized invoice cannot change (issue a credit note)';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
        """,
    ),
)
class InvoiceLine(models.Model):
    """One charge on an invoice: a fee for a period, a usage charge rated from a meter (with its
    tier-by-tier breakdown), a proration or an adjustment. `amount` is rounded once (half-up)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=12, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=30, decimal_places=12, default=1)
    unit_amount = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    amount = models.BigIntegerField()
    price = models.ForeignKey(
        "tiers.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    meter = models.CharField(max_length=64, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    proration = models.BooleanField(default=False)
    breakdown = models.JSONField(default=list, blank=True)
    # set by billing.invoicing.totals: this line's share of the invoice's discounts and of the credits
    # that paid it (a usage line), and its tax
    discount_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description


class InvoicePayment(models.Model):
    """A provider-reported payment applied to an invoice: one row per payment (a redelivered event
    links nothing twice). A failed charge is linked too (amount 0 applied), so the invoice page
    lists every collection attempt."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    payment = models.OneToOneField(
        "memberships.Payment", on_delete=models.PROTECT, related_name="invoice_link"
    )
    amount_applied = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.payment} → {self.invoice}"
