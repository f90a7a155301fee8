"""What issuing a credit note and refunding it share: payloads, locks, the refund call."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone

from billing.events.services import event_publish
from billing.invoicing.exceptions import CreditNoteInvalid, InvoiceNotFound, RefundRefused
from billing.invoicing.models import (
    CreditNote,
    CreditNoteStatus,
    Invoice,
    InvoiceStatus,
)
from billing.invoicing.signals import credit_note_issued
from billing.providers.base import ProviderError, ProviderNotSupported, ProviderUnavailable, RefundResult
from kernel.enqueue import enqueue

logger = logging.getLogger(__name__)
CREDITABLE = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)
MAX_AMOUNT = 2**63 - 1


def credit_note_payload(note: CreditNote) -> dict:
    return {
        "id": note.pk,
        "number": note.number,
        "invoice": note.invoice_id,
        "invoice_number": note.invoice.number,
        "customer": note.invoice.customer.external_id,
        "currency": note.currency,
        "amount": note.amount,
        "pre_payment_amount": note.pre_payment_amount,
        "refund_amount": note.refund_amount,
        "credit_amount": note.credit_amount,
        "reason": note.reason,
        "origin": note.origin,
        "status": note.status,
        "provider_refund_id": note.provider_refund_id or None,
    }


def _amount(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
        raise CreditNoteInvalid(
            f"{what} is a positive integer amount in minor units.",
            code="invalid_amount",
            details={"amount": value},
        )
    return value


def _locked_invoice(invoice_id: int) -> Invoice:
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk=invoice_id)
        .first()
    )
    if invoice is None:
        raise InvoiceNotFound("No such invoice.", details={"id": invoice_id})
    return invoice


def _returned(invoice: Invoice) -> int:
    """What the invoice's notes gave back after payment (refunded or credited out of band)."""
    sums = CreditNote.objects.filter(invoice=invoice).aggregate(
        r=Sum("refund_amount"), c=Sum("credit_amount")
    )
    return (sums["r"] or 0) + (sums["c"] or 0)


def _adapter(provider: str):
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    adapter = provider_for(provider_account_for_checkout(provider=provider))
    if not hasattr(adapter, "refund"):
        raise ProviderNotSupported(
            f"Refunds through {provider} are not supported yet: refund at the provider (its webhook then "
            "issues the credit note) or issue the credit note with refund=false.",
            details={"provider": provider},
        )
    return adapter


def _issue(invoice: Invoice, *, amount: int, **fields) -> CreditNote:
    """A numbered note on the locked invoice, its credited amount added to the invoice."""
    last = CreditNote.objects.filter(invoice=invoice).aggregate(last=Max("sequence"))["last"] or 0
    note = CreditNote.objects.create(
        invoice=invoice,
        sequence=last + 1,
        number=f"{invoice.number}-CN{last + 1}",
        currency=invoice.currency,
        amount=amount,
        **fields,
    )
    note.invoice = invoice
    invoice.amount_credited += amount
    invoice.save(update_fields=["amount_credited"])
    credit_note_issued.send(sender=CreditNote, credit_note=note)
    return note


def _publish(kind: str, note: CreditNote) -> None:
    event_publish(type=kind, customer=note.invoice.customer.external_id, payload=credit_note_payload(note))


def _call_refund(note: CreditNote, adapter) -> RefundResult:
    charge = note.payment
    earlier = CreditNote.objects.filter(
        payment=charge,
        pk__lt=note.pk,
        status__in=(CreditNoteStatus.REFUNDED, CreditNoteStatus.REFUND_PENDING),
    ).aggregate(total=Sum("refund_amount"))["total"]
    with transaction.atomic():  # a savepoint: an engine's own writes roll back alone if it fails
        return adapter.refund(
            payment_id=charge.reference or charge.provider_payment_id,
            amount=note.refund_amount,
            currency=note.currency,
            idempotency_key=note.refund_key,
            reason=note.reason,
            refunded_before=earlier or 0,
        )


def _refunded(note: CreditNote, result: RefundResult) -> None:
    note.status, note.refunded_at, note.refund_error = CreditNoteStatus.REFUNDED, timezone.now(), ""
    note.provider_refund_id = note.provider_refund_id or result.refund_id
    note.save(update_fields=["status", "refunded_at", "refund_error", "provider_refund_id"])


def _refund_first(note: CreditNote, adapter) -> None:
    """The refund of a note being issued: a refusal undoes the note (the caller's transaction rolls
    back); no answer leaves it pending for the retry task."""
    try:
        result = _call_refund(note, adapter)
    except ProviderUnavailable as exc:
        note.refund_error = exc.message[:500]
        note.save(update_fields=["refund_error"])
        transaction.on_commit(lambda: _enqueue_retry(note.pk, countdown=30))
        return
    except ProviderError as exc:
        if exc.status_code < 500:  # not configured, not supported: already ours to report
            raise
        raise RefundRefused(
            f"{note.provider} refused the refund: {exc.message}",
            details={"provider": note.provider, "provider_code": exc.code, **exc.details},
        ) from exc
    _refunded(note, result)


def _enqueue_retry(credit_note_id: int, *, countdown: int | None = None) -> None:
    from billing.invoicing.tasks import credit_note_refund

    enqueue(
        credit_note_refund,
        args=(credit_note_id,),
        countdown=countdown,
        fallback="invoicing.credit_notes_sweep will",
    )
