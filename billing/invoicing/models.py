"""Invoices: what a customer owes for a period, in integer minor units of one currency.

A draft can be rebuilt; finalizing gives it the tenant's next gapless number and freezes it: the
database refuses any UPDATE of a finalized invoice's number, customer, currency, period or amounts
(paid/credited amounts and the status may still move), any DELETE of a finalized invoice, and any
change to a finalized invoice's lines. Corrections are credit notes.
"""

import pgtrigger
from django.db import models
from django.db.models import Q


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


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
    "period_end", "collected_by", "billing_reason",
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
                condition=Q(subtotal__gte=0) & Q(discount__gte=0) & Q(tax__gte=0) & Q(total__gte=0),
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
        indexes = [models.Index(fields=["customer", "-id"], name="invoicing_invoice_customer")]

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
    # set by billing.invoicing.totals: this line's share of the invoice's discounts, and its tax
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


class CreditNoteReason(models.TextChoices):
    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    ORDER_CHANGE = "order_change", "Order change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", "Product unsatisfactory"
    OTHER = "other", "Other"


class CreditNoteStatus(models.TextChoices):
    ISSUED = "issued", "Issued"  # nothing to refund through a provider
    REFUND_PENDING = "refund_pending", "Refund pending"  # the provider did not answer yet: retried
    REFUNDED = "refunded", "Refunded"
    REFUND_FAILED = "refund_failed", "Refund failed"  # the provider refused on a retry: settle by hand


class CreditNoteOrigin(models.TextChoices):
    PORTAL = "portal", "Issued here"
    PROVIDER = "provider", "A refund made at the provider"


CREDIT_NOTE_FROZEN = (
    "invoice_id", "number", "sequence", "currency", "amount", "pre_payment_amount", "refund_amount",
    "credit_amount", "reason", "memo", "origin", "payment_id", "provider", "created_at",
)  # fmt: skip


@pgtrigger.register(
    pgtrigger.Protect(
        name="credit_note_frozen",
        operation=pgtrigger.Update,
        condition=pgtrigger.Condition(
            "(("
            + ", ".join(f"OLD.{f}" for f in CREDIT_NOTE_FROZEN)
            + ") IS DISTINCT FROM ("
            + ", ".join(f"NEW.{f}" for f in CREDIT_NOTE_FROZEN)
            + "))"
        ),
    ),
    pgtrigger.Protect(name="credit_note_no_delete", operation=pgtrigger.Delete),
)
class CreditNote(models.Model):
    """A correction of a finalized invoice, numbered `<invoice number>-CN<n>` (gapless per invoice) and
    frozen once issued: `amount` = `pre_payment_amount` (lowers what is still due on an open invoice)
    + `refund_amount` (returned through the provider that collected `payment`) + `credit_amount`
    (credited out of band). Only the refund's progress moves (status, provider refund id, the
    provider-reported refund row); the database refuses any other UPDATE and every DELETE."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(
        max_length=60, db_index=True
    )  # unique per invoice: a provider's numbers may repeat
    sequence = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    pre_payment_amount = models.BigIntegerField(default=0)
    refund_amount = models.BigIntegerField(default=0)
    credit_amount = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=24, choices=CreditNoteReason.choices, default=CreditNoteReason.OTHER)
    memo = models.CharField(max_length=500, blank=True)
    origin = models.CharField(
        max_length=10, choices=CreditNoteOrigin.choices, default=CreditNoteOrigin.PORTAL
    )
    status = models.CharField(
        max_length=16, choices=CreditNoteStatus.choices, default=CreditNoteStatus.ISSUED
    )
    # the charge refunded and the provider that collected it
    payment = models.ForeignKey(
        "memberships.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    provider = models.CharField(max_length=16, blank=True)
    provider_refund_id = models.CharField(max_length=255, blank=True)
    # the provider's report of this refund (Payment kind=refund), once its webhook arrived
    refund_payment = models.OneToOneField(
        "memberships.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_note"
    )
    refund_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "sequence"], name="invoicing_credit_note_sequence"),
            models.UniqueConstraint(
                fields=["provider", "provider_refund_id"],
                condition=~Q(provider_refund_id=""),
                name="invoicing_credit_note_refund_id",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0)
                & Q(pre_payment_amount__gte=0)
                & Q(refund_amount__gte=0)
                & Q(credit_amount__gte=0)
                & Q(
                    amount=models.F("pre_payment_amount")
                    + models.F("refund_amount")
                    + models.F("credit_amount")
                ),
                name="invoicing_credit_note_amounts",
            ),
            models.CheckConstraint(
                condition=Q(refund_amount=0) | Q(payment__isnull=False),
                name="invoicing_credit_note_refund_of",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def refund_key(self) -> str:
        """The idempotency key of the provider's refund call: a retry never refunds twice."""
        return f"creditnote-{self.pk}"


@pgtrigger.register(
    pgtrigger.Protect(name="credit_note_line_frozen", operation=pgtrigger.Update | pgtrigger.Delete)
)
class CreditNoteLine(models.Model):
    """The part of a credit note allocated to one invoice line (never more, over all of the invoice's
    credit notes, than the line's amount)."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="credit_note_lines")
    description = models.CharField(max_length=300)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoicing_credit_note_line_positive"),
            models.UniqueConstraint(
                fields=["credit_note", "invoice_line"], name="invoicing_credit_note_line_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.credit_note}: {self.description}"


# --- discounts and taxes --------------------------------------------------------------------------

TAX_RATE_TERMS = ["name", "percent", "inclusive", "country"]


@pgtrigger.register(
    pgtrigger.ReadOnly(name="tax_rate_terms_immutable", fields=TAX_RATE_TERMS),
    pgtrigger.Protect(name="tax_rate_no_delete", operation=pgtrigger.Delete),
)
class TaxRate(models.Model):
    """A tax the tenant charges customers in `country` (blank: every customer), `percent` of each
    line's amount after discounts: added to the total (exclusive) or carved out of it (inclusive).
    Terms are immutable and a rate is never deleted: a change is a new rate, the old one deactivated."""

    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField(default=False)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2; blank: all.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gt=0) & Q(percent__lte=100), name="invoicing_tax_rate_percent"
            ),
            models.CheckConstraint(
                condition=Q(country__regex=r"^([A-Z]{2})?$"), name="invoicing_tax_rate_country"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.percent}%"


_FROZEN_WITH_INVOICE = """
    IF (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft' THEN
        RAISE EXCEPTION 'the discounts and taxes of a finalized invoice cannot change (issue a credit note)';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
"""


@pgtrigger.register(
    pgtrigger.Trigger(
        name="invoice_discount_frozen_with_invoice",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        func=_FROZEN_WITH_INVOICE,
    ),
)
class InvoiceDiscount(models.Model):
    """What a customer's coupon (its redemption) took off an invoice: "Discount (CODE)". Unique per
    (redemption, invoice), so finalizing an invoice uses one of a redemption's periods at most once."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="discounts")
    redemption = models.ForeignKey(
        "memberships.CouponRedemption", on_delete=models.PROTECT, related_name="invoice_discounts"
    )
    coupon_code = models.CharField(max_length=64)
    coupon_name = models.CharField(max_length=200, blank=True)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["redemption", "invoice"], name="invoicing_discount_once_per_invoice"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoicing_discount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Discount ({self.coupon_code})"


@pgtrigger.register(
    pgtrigger.Trigger(
        name="invoice_tax_frozen_with_invoice",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        func=_FROZEN_WITH_INVOICE,
    ),
)
class InvoiceTax(models.Model):
    """A tax on an invoice as charged (the rate's name, percent, inclusive flag and country kept):
    the lines' taxable amount and the tax, the sum of each line's rounded tax."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes")
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField()
    country = models.CharField(max_length=2, blank=True)
    taxable_amount = models.BigIntegerField()
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "tax_rate"], name="invoicing_tax_once_per_invoice"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoicing_tax_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Tax ({self.name}, {self.percent}%)"
