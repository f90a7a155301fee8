"""Credit notes: the only correction of a finalized invoice, and refunds through the provider that
collected it.

As Stripe's, a credit note on an open (or uncollectible) invoice lowers what is still due
(`pre_payment_amount`, at most the amount due; one that covers all of it settles the invoice), and
one on a paid invoice gives money back: through the provider that collected the charge
(`refund_amount`, `refund=true`) or out of band (`credit_amount`), at most what was paid and not yet
given back. All checked under the invoice row's lock; over all of an invoice's notes the credited
total never exceeds the invoice's total.

A refund is one call of the adapter's `refund`, keyed `creditnote-<id>` (a retry is the same refund),
made inside the transaction that issues the note: a refusal issues nothing (409 `refund_refused`); a
provider that does not answer leaves the note `refund_pending`, and `invoicing.credit_note_refund`
retries it with backoff (the beat sweep re-enqueues what is still pending). The provider's webhook
of the refund (memberships' Payment kind=refund) is matched to the note by the refund id the provider
answered (or, while that answer is lost, by the charge and amount of a pending note) and never
issues a second note. A refund made at the provider itself (staff refunding in Stripe's dashboard) of
a charge that paid one of our invoices issues a credit note by itself (reason `other`, origin
`provider`), clamped to what the invoice can still credit; on an invoice that is not paid it issues
none (logged): what the customer owes then is staff's call.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from billing.events.services import event_publish
from billing.invoicing.exceptions import CreditNoteInvalid, InvoiceNotFound, InvoiceStateError, RefundRefused
from billing.invoicing.models import (
    CreditNote,
    CreditNoteLine,
    CreditNoteOrigin,
    CreditNoteReason,
    CreditNoteStatus,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoiceStatus,
)
from billing.invoicing.services import invoice_payload
from billing.memberships.models import Payment, PaymentKind
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


def _allocations(invoice: Invoice, lines: list) -> list[tuple[InvoiceLine, int]]:
    """Each requested {"line": id, "amount"} checked against the line's amount less what earlier notes
    credited on it."""
    if not isinstance(lines, list) or not lines or len(lines) > 500:
        raise CreditNoteInvalid("`lines` lists 1 to 500 {line, amount} items.", code="invalid_lines")
    wanted: dict[int, int] = {}
    for item in lines:
        line_id = item.get("line") if isinstance(item, dict) else None
        if isinstance(line_id, bool) or not isinstance(line_id, int) or line_id in wanted:
            raise CreditNoteInvalid("Each item names a different invoice line by id.", code="invalid_lines")
        wanted[line_id] = _amount(item.get("amount"), "A line's amount")
    found = {line.pk: line for line in InvoiceLine.objects.filter(invoice=invoice, pk__in=list(wanted))}
    if missing := sorted(set(wanted) - set(found)):
        raise CreditNoteInvalid(
            f"Invoice {invoice} has no line {missing[0]}.",
            code="unknown_invoice_line",
            details={"lines": missing},
        )
    credited = dict(
        CreditNoteLine.objects.filter(invoice_line__in=list(found))
        .values_list("invoice_line")
        .annotate(total=Sum("amount"))
    )
    for line_id, amount in wanted.items():
        left = max(found[line_id].amount, 0) - credited.get(line_id, 0)
        if amount > left:
            raise CreditNoteInvalid(
                f"Line {line_id} can be credited {left} more at most.",
                code="credit_exceeds_line",
                details={"line": line_id, "amount": amount, "creditable": left},
            )
    return [(found[line_id], amount) for line_id, amount in wanted.items()]


def _refundable_charge(invoice: Invoice, amount: int) -> Payment:
    """The newest charge that paid this invoice with at least `amount` not yet refunded (a refund
    goes back through one charge)."""
    links = (
        InvoicePayment.objects.filter(invoice=invoice, payment__kind=PaymentKind.CHARGE, amount_applied__gt=0)
        .select_related("payment")
        .order_by("-id")
    )
    refunded = dict(
        CreditNote.objects.filter(invoice=invoice, payment__isnull=False)
        .values_list("payment")
        .annotate(total=Sum("refund_amount"))
    )
    best = 0
    for link in links:
        left = link.amount_applied - refunded.get(link.payment_id, 0)
        if left >= amount:
            return link.payment
        best = max(best, left)
    raise CreditNoteInvalid(
        f"No payment of invoice {invoice} has {amount} left to refund"
        + (f" (at most {best} through one payment)." if best else ": it was not paid through a provider."),
        code="refund_exceeds_payment" if best else "no_payment_to_refund",
        details={"amount": amount, "refundable": best},
    )


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
    return note


def _publish(kind: str, note: CreditNote) -> None:
    event_publish(type=kind, customer=note.invoice.customer.external_id, payload=credit_note_payload(note))


def credit_note_create(
    *,
    invoice_id: int,
    amount: int | None = None,
    lines: list[dict] | None = None,
    reason: str = CreditNoteReason.OTHER,
    memo: str = "",
    refund: bool = False,
) -> CreditNote:
    """Issue a credit note on an open, paid or uncollectible invoice: `amount`, or `lines`
    ([{"line": <invoice line id>, "amount"}], the amount being their sum). With `refund`, what goes
    back after payment is refunded through the provider that collected (see the module docstring);
    without it, that part is credited out of band. Publishes `credit_note.created`."""
    if (amount is None) == (lines is None):
        raise CreditNoteInvalid("Give either `amount` or `lines`.", code="invalid_credit_note")
    if reason not in CreditNoteReason.values:
        raise CreditNoteInvalid(
            f"reason is one of {', '.join(CreditNoteReason.values)}.",
            code="invalid_reason",
            details={"reason": reason},
        )
    if not isinstance(memo, str) or len(memo) > 500:
        raise CreditNoteInvalid("memo is at most 500 characters.", code="invalid_memo")
    if amount is not None:
        _amount(amount, "amount")
    with transaction.atomic():
        invoice = _locked_invoice(invoice_id)
        if invoice.status not in CREDITABLE:
            raise InvoiceStateError(
                f"Invoice {invoice} is {invoice.status}: only open, paid or uncollectible invoices take credit notes.",
                details={"status": invoice.status},
            )
        allocations = _allocations(invoice, lines) if lines is not None else []
        if allocations:
            amount = sum(part for _, part in allocations)
        if invoice.status == InvoiceStatus.PAID:  # after payment: money goes back
            pre, after, due = 0, amount, 0
            returnable = invoice.amount_paid - _returned(invoice)
            if amount > returnable:
                raise CreditNoteInvalid(
                    f"Invoice {invoice} has {max(returnable, 0)} paid and not yet refunded or credited.",
                    code="credit_exceeds_paid",
                    details={"amount": amount, "refundable": max(returnable, 0)},
                )
        else:  # before payment: what is due is lowered
            if refund:
                raise CreditNoteInvalid(
                    f"Invoice {invoice} is {invoice.status}: there is no payment to refund (a credit note "
                    "lowers what is due; issue it with refund=false).",
                    code="invoice_not_paid",
                    details={"status": invoice.status},
                )
            due = max(invoice.total - invoice.amount_paid - invoice.amount_credited, 0)
            pre, after = amount, 0
            if amount > due:
                raise CreditNoteInvalid(
                    f"Invoice {invoice} has {due} due: a credit note lowers it by that much at most.",
                    code="credit_exceeds_due",
                    details={"amount": amount, "due": due},
                )
        creditable = invoice.total - invoice.amount_credited  # an overpaid invoice credits its total at most
        if amount > creditable:
            raise CreditNoteInvalid(
                f"Invoice {invoice} can be credited {max(creditable, 0)} more at most.",
                code="credit_exceeds_total",
                details={"amount": amount, "creditable": max(creditable, 0)},
            )
        charge, adapter = None, None
        if refund and after:
            charge = _refundable_charge(invoice, after)
            adapter = _adapter(charge.provider)  # before any write: an unsupported provider changes nothing
        note = _issue(
            invoice,
            amount=amount,
            pre_payment_amount=pre,
            refund_amount=after if charge is not None else 0,
            credit_amount=0 if charge is not None else after,
            reason=reason,
            memo=memo,
            payment=charge,
            provider=charge.provider if charge is not None else "",
            status=CreditNoteStatus.REFUND_PENDING if charge is not None else CreditNoteStatus.ISSUED,
        )
        CreditNoteLine.objects.bulk_create(
            [
                CreditNoteLine(credit_note=note, invoice_line=line, description=line.description, amount=part)
                for line, part in allocations
            ]
        )
        if pre and pre == due:  # nothing is due any more
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, timezone.now()
            invoice.save(update_fields=["status", "paid_at"])
            event_publish(
                type="invoice.paid", customer=invoice.customer.external_id, payload=invoice_payload(invoice)
            )
        if charge is not None:
            _refund_first(note, adapter)
        _publish("credit_note.created", note)
    return note


def _call_refund(note: CreditNote, adapter) -> RefundResult:
    charge = note.payment
    with transaction.atomic():  # a savepoint: an engine's own writes roll back alone if it fails
        return adapter.refund(
            payment_id=charge.reference or charge.provider_payment_id,
            amount=note.refund_amount,
            currency=note.currency,
            idempotency_key=note.refund_key,
            reason=note.reason,
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
