"""The ledger's side of what other apps announce (connected in LedgerConfig.ready). Both signals
are sent inside the transaction that made the change, so the posting commits or rolls back with it
(a billing run's invoices are posted in a handful of statements)."""

from __future__ import annotations

from billing.ledger import postings
from billing.ledger.services import ledger_post_many


def on_invoices_finalized(sender, *, invoices, **kwargs) -> None:
    from billing.ledger.recognition import recognition_schedules_create

    posted = [p for invoice in invoices if (p := postings.invoice_posting(invoice)) is not None]
    ledger_post_many(posted + recognition_schedules_create(invoices=invoices))


def on_invoice_voided(sender, *, invoice, **kwargs) -> None:
    """A voided invoice is owed no more: its finalization's posting is reversed (once)."""
    from billing.ledger.models import JournalTransaction
    from billing.ledger.services import ledger_reverse

    txn = JournalTransaction.objects.filter(source=postings.INVOICE_SOURCE, source_id=str(invoice.pk)).first()
    if txn is not None:
        ledger_reverse(txn=txn, reason=f"invoice {invoice.number} voided", occurred_at=invoice.voided_at)
    from billing.ledger.corrections import invoice_void_post

    invoice_void_post(invoice=invoice)


def on_credit_note_issued(sender, *, credit_note, **kwargs) -> None:
    """A credit note reverses what its invoice has not recognized yet first (billing.ledger.corrections)."""
    from billing.ledger.corrections import credit_note_post

    credit_note_post(note=credit_note)


def on_invoice_marked_uncollectible(sender, *, invoice, **kwargs) -> None:
    from billing.ledger.corrections import uncollectible_post

    uncollectible_post(invoice=invoice)


def on_payment_recorded(sender, *, payment, charge=None, **kwargs) -> None:
    posting = postings.payment_posting(payment)
    if posting is not None:
        ledger_post_many([posting])


def on_invoice_payment_applied(sender, *, invoice, amount, previous_status, **kwargs) -> None:
    from billing.invoicing.models import InvoiceStatus
    from billing.ledger.corrections import bad_debt_recover

    if previous_status == InvoiceStatus.UNCOLLECTIBLE:
        bad_debt_recover(invoice=invoice, amount=amount)
