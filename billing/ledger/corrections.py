"""What corrects an invoice's postings: a credit note, a write-off (uncollectible), a void. The entries
are listed in billing.ledger.postings' docstring; each posts once (its source key) inside the
transaction that made the change."""

from __future__ import annotations

from django.db.models import Sum
from django.utils import timezone

from billing.invoicing.models import CreditNote, Invoice, InvoiceStatus
from billing.ledger.models import JournalEntry, JournalTransaction
from billing.ledger.recognition import RECOGNITION_SOURCE, recognition_stop, recognition_take_back
from billing.ledger.services import Posting, ledger_post_many, ledger_reverse

CREDIT_NOTE_SOURCE = "credit_note"
UNCOLLECTIBLE_SOURCE = "uncollectible"
RECOVERY_SOURCE = "bad_debt_recovery"


def _tax_through(invoice: Invoice, credited: int) -> int:
    """The tax part of the first `credited` of the invoice's total (cumulative, so the tax of all of
    an invoice's credit notes adds up to its tax when its whole total is credited)."""
    tax = min(max(invoice.tax, 0), invoice.total)
    return credited * tax // invoice.total if invoice.total > 0 else 0


def credit_note_posting(note: CreditNote) -> Posting | None:
    """A credit note's posting: its tax part off `tax_payable`, then its net part off what the
    invoice has not recognized yet (`deferred_revenue`, the schedules re-spread) and the rest off
    `revenue`; credited to `receivable` (what was due, or out-of-band credit owed to the customer),
    `bad_debt` (what was due on a written-off invoice) and `refunds` (a refund the provider's refund
    payment then clears: Dr refunds / Cr cash). Moves the invoice's schedules: call it once."""
    invoice = note.invoice
    if invoice.total <= 0 or note.amount <= 0:
        return None
    currency = note.currency.lower()
    credited = min(invoice.amount_credited, invoice.total)
    tax = _tax_through(invoice, credited) - _tax_through(invoice, max(credited - note.amount, 0))
    tax = min(max(tax, 0), note.amount)
    net = note.amount - tax
    deferred = recognition_take_back(invoice_id=invoice.pk, amount=net)
    due = note.pre_payment_amount
    written_off = invoice.status == InvoiceStatus.UNCOLLECTIBLE and _write_off(invoice) is not None
    entries = [
        ("deferred_revenue", currency, deferred),
        ("revenue", currency, net - deferred),
        ("tax_payable", currency, tax),
        ("bad_debt" if written_off else "receivable", currency, -due),
        ("receivable", currency, -note.credit_amount),
        ("refunds", currency, -note.refund_amount),
    ]
    merged: dict[tuple[str, str], int] = {}
    for code, cur, amount in entries:
        merged[(code, cur)] = merged.get((code, cur), 0) + amount
    return Posting(
        source=CREDIT_NOTE_SOURCE,
        source_id=str(note.pk),
        occurred_at=note.created_at or timezone.now(),
        description=f"Credit note {note.number}",
        entries=[(code, cur, amount) for (code, cur), amount in merged.items() if amount],
        metadata={
            "credit_note": note.pk, "number": note.number, "invoice": invoice.pk,
            "unrecognized_reversed": deferred, "recognized_reversed": net - deferred, "tax": tax,
        },
    )  # fmt: skip


def credit_note_post(*, note: CreditNote) -> JournalTransaction | None:
    if JournalTransaction.objects.filter(source=CREDIT_NOTE_SOURCE, source_id=str(note.pk)).exists():
        return None  # the schedules moved with the first posting: never twice
    posting = credit_note_posting(note)
    return ledger_post_many([posting])[0] if posting is not None else None


def _write_off(invoice: Invoice) -> JournalTransaction | None:
    return JournalTransaction.objects.filter(source=UNCOLLECTIBLE_SOURCE, source_id=str(invoice.pk)).first()


def uncollectible_post(*, invoice: Invoice) -> JournalTransaction | None:
    """Write off what is still due on an invoice given up on: Dr bad_debt / Cr receivable. Its
    revenue stays recognized (the service was delivered; see billing.ledger.recognition)."""
    due = invoice.total - invoice.amount_paid - invoice.amount_credited
    if due <= 0:
        return None
    currency = invoice.currency.lower()
    return ledger_post_many(
        [
            Posting(
                source=UNCOLLECTIBLE_SOURCE, source_id=str(invoice.pk), occurred_at=timezone.now(),
                description=f"Invoice {invoice.number} written off (uncollectible)",
                entries=[("bad_debt", currency, due), ("receivable", currency, -due)],
                metadata={"invoice": invoice.pk, "number": invoice.number},
            )
        ]
    )[0]  # fmt: skip


def bad_debt_recover(*, invoice: Invoice, amount: int) -> JournalTransaction | None:
    """A payment on a written-off invoice: what it pays of the write-off comes back (Dr receivable /
    Cr bad_debt), so the charge's Cr receivable leaves the invoice's receivable at zero. Keyed by the
    invoice's paid amount after it (one posting per application)."""
    written_off = (
        JournalEntry.objects.filter(
            account__code="bad_debt", transaction__metadata__invoice=invoice.pk
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    recovered = min(amount, written_off)
    if recovered <= 0:
        return None
    currency = invoice.currency.lower()
    return ledger_post_many(
        [
            Posting(
                source=RECOVERY_SOURCE, source_id=f"{invoice.pk}-{invoice.amount_paid}", occurred_at=timezone.now(),
                description=f"Invoice {invoice.number}: written-off amount paid after all",
                entries=[("receivable", currency, recovered), ("bad_debt", currency, -recovered)],
                metadata={"invoice": invoice.pk, "number": invoice.number},
            )
        ]
    )[0]  # fmt: skip


def invoice_void_post(*, invoice: Invoice) -> None:
    """A voided invoice billed nothing in the end: its finalization, its credit notes and its
    write-off are reversed, and the revenue it recognized is taken back to deferred (which the
    finalization's reversal then clears), so every account nets to zero for it."""
    when = invoice.voided_at or timezone.now()
    reason = f"invoice {invoice.number} voided"
    notes = [str(pk) for pk in CreditNote.objects.filter(invoice=invoice).values_list("pk", flat=True)]
    linked = list(
        JournalTransaction.objects.filter(source=CREDIT_NOTE_SOURCE, source_id__in=notes).order_by("id")
    )
    for txn in [*linked, _write_off(invoice)]:
        if txn is not None:
            ledger_reverse(txn=txn, reason=reason, occurred_at=when)
    if JournalTransaction.objects.filter(source=RECOGNITION_SOURCE, source_id=f"void-{invoice.pk}").exists():
        return
    recognized = recognition_stop(invoice_id=invoice.pk)
    if recognized > 0:
        currency = invoice.currency.lower()
        ledger_post_many(
            [
                Posting(
                    source=RECOGNITION_SOURCE, source_id=f"void-{invoice.pk}", occurred_at=when,
                    description=f"Invoice {invoice.number} voided: its recognized revenue taken back",
                    entries=[("revenue", currency, recognized), ("deferred_revenue", currency, -recognized)],
                    metadata={"invoice": invoice.pk, "number": invoice.number},
                )
            ]
        )  # fmt: skip
