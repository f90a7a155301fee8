"""The ledger's side of what other apps announce (connected in LedgerConfig.ready). Both signals
are sent inside the transaction that made the change, so the posting commits or rolls back with it
(a billing run's invoices are posted in a handful of statements)."""

from __future__ import annotations

from billing.ledger import postings
from billing.ledger.services import ledger_post_many


def on_invoices_finalized(sender, *, invoices, **kwargs) -> None:
    ledger_post_many([p for invoice in invoices if (p := postings.invoice_posting(invoice)) is not None])


def on_payment_recorded(sender, *, payment, charge=None, **kwargs) -> None:
    posting = postings.payment_posting(payment)
    if posting is not None:
        ledger_post_many([posting])
