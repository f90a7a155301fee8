"""Credit notes: corrections of a finalized invoice (what was credited, refunded through the provider
or off what was due), numbered per invoice and frozen once issued."""

import pgtrigger
from django.db import models
from django.db.models import Q

from billing.invoicing.models.invoices import Invoice, InvoiceLine


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
