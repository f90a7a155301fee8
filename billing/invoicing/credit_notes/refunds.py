"""Refunds after the fact: a pending refund retried, the sweep, and a refund made at the provider."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.invoicing.credit_notes._common import (
    _adapter,
    _call_refund,
    _enqueue_retry,
    _issue,
    _locked_invoice,
    _publish,
    _refunded,
    _returned,
)
from billing.invoicing.models import (
    CreditNote,
    CreditNoteOrigin,
    CreditNoteReason,
    CreditNoteStatus,
    InvoicePayment,
    InvoiceStatus,
)
from billing.memberships.models import Payment, PaymentKind
from billing.providers.base import ProviderError, ProviderUnavailable

logger = logging.getLogger(__name__)


def credit_note_refund_retry(*, credit_note_id: int) -> CreditNote:
    """Ask the provider again for a pending note's refund, with the same idempotency key. A note no
    longer pending (refunded meanwhile, or its webhook arrived) is left as it is. ProviderUnavailable
    propagates (the task retries); a refusal now leaves the note `refund_failed` (its credit stands:
    staff settle it out of band)."""
    with transaction.atomic():
        invoice_id = CreditNote.objects.values_list("invoice_id", flat=True).get(pk=credit_note_id)
        _locked_invoice(invoice_id)  # the invoice first, as everywhere (the refund webhook too)
        note = (
            CreditNote.objects.select_for_update(of=("self",))
            .select_related("payment", "invoice__customer")
            .get(pk=credit_note_id)
        )
        if note.status != CreditNoteStatus.REFUND_PENDING:
            return note
        try:
            result = _call_refund(note, _adapter(note.provider))
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            note.status, note.refund_error = CreditNoteStatus.REFUND_FAILED, exc.message[:500]
            note.save(update_fields=["status", "refund_error"])
            _publish("credit_note.refund_failed", note)
            return note
        _refunded(note, result)
    return note


def credit_notes_refund_sweep(*, older_than_seconds: int = 600) -> int:
    """Re-enqueue the refunds still pending (a lost message, retries exhausted while the provider was
    down); returns how many."""
    since = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        CreditNote.objects.filter(status=CreditNoteStatus.REFUND_PENDING, created_at__lt=since).values_list(
            "pk", flat=True
        )[:500]
    )
    for pk in ids:
        _enqueue_retry(pk)
    return len(ids)


def credit_note_from_refund(*, payment: Payment, charge: Payment | None = None) -> CreditNote | None:
    """A provider-reported refund (Payment kind=refund) of a charge that paid one of our invoices: the
    note we issued for it (matched by the provider's refund id, or a pending note of that charge and
    amount whose answer was lost) is marked refunded; a refund we did not ask for issues its own note.
    A redelivery never gets here (payment_record reports a payment once); a refund is linked once."""
    if payment.kind != PaymentKind.REFUND:
        return None
    if charge is None and payment.reference:
        charge = (
            Payment.objects.filter(
                Q(reference=payment.reference) | Q(provider_payment_id=payment.reference),
                provider=payment.provider,
                kind=PaymentKind.CHARGE,
            )
            .order_by("id")
            .first()
        )
    link = InvoicePayment.objects.filter(payment=charge).first() if charge is not None else None
    if link is None:
        return None  # not a charge of one of our invoices
    with transaction.atomic():
        invoice = _locked_invoice(link.invoice_id)
        mine = CreditNote.objects.select_for_update(of=("self",)).select_related("invoice__customer")
        note = mine.filter(provider=payment.provider, provider_refund_id=payment.provider_payment_id).first()
        if note is None:
            note = (
                mine.filter(
                    invoice=invoice, payment=charge, status=CreditNoteStatus.REFUND_PENDING, provider_refund_id="",
                    refund_amount=payment.amount, refund_payment__isnull=True,
                )
                .order_by("id")
                .first()
            )  # fmt: skip
        if note is not None:
            if note.refund_payment_id is None:
                note.refund_payment = payment
                note.provider_refund_id = note.provider_refund_id or payment.provider_payment_id
                if note.status in (CreditNoteStatus.REFUND_PENDING, CreditNoteStatus.REFUND_FAILED):
                    note.status, note.refunded_at = CreditNoteStatus.REFUNDED, payment.occurred_at
                note.save(update_fields=["refund_payment", "provider_refund_id", "status", "refunded_at"])
            return note
        if invoice.status != InvoiceStatus.PAID or payment.currency.lower() != invoice.currency:
            logger.warning(
                "refund %s of invoice %s (%s): no credit note issued", payment.pk, invoice, invoice.status
            )
            return None
        refunded = (
            CreditNote.objects.filter(payment=charge).aggregate(total=Sum("refund_amount"))["total"] or 0
        )
        amount = min(
            payment.amount,
            invoice.total - invoice.amount_credited,
            invoice.amount_paid - _returned(invoice),
            link.amount_applied - refunded,
        )
        if amount <= 0:
            logger.warning("refund %s of invoice %s: nothing left to credit", payment.pk, invoice)
            return None
        note = _issue(
            invoice,
            amount=amount,
            refund_amount=amount,
            reason=CreditNoteReason.OTHER,
            memo=f"Refunded at {payment.provider} ({payment.provider_payment_id})"[:500],
            origin=CreditNoteOrigin.PROVIDER,
            status=CreditNoteStatus.REFUNDED,
            payment=charge,
            provider=payment.provider,
            provider_refund_id=payment.provider_payment_id,
            refund_payment=payment,
            refunded_at=payment.occurred_at,
        )
        _publish("credit_note.created", note)
    return note
