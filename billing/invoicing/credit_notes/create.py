"""Issuing a credit note (see the package docstring)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.events.services import event_publish
from billing.invoicing.credit_notes._common import (
    CREDITABLE,
    _adapter,
    _amount,
    _issue,
    _locked_invoice,
    _publish,
    _refund_first,
    _returned,
)
from billing.invoicing.exceptions import CreditNoteInvalid, InvoiceStateError
from billing.invoicing.models import (
    CreditNote,
    CreditNoteLine,
    CreditNoteReason,
    CreditNoteStatus,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoiceStatus,
)
from billing.invoicing.services import invoice_payload
from billing.memberships.models import Payment, PaymentKind

logger = logging.getLogger(__name__)


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
