"""Invoicing's side of what other apps announce (connected in InvoicingConfig.ready)."""

from __future__ import annotations

from billing.invoicing.credit_notes import credit_note_from_refund
from billing.invoicing.mirror import invoice_mirror
from billing.invoicing.payments import invoice_payment_link


def on_payment_recorded(sender, *, payment, charge=None, **kwargs) -> None:
    invoice_payment_link(payment=payment)
    credit_note_from_refund(payment=payment, charge=charge)


def on_provider_invoice(sender, *, provider, invoice, occurred_at, event_id="", **kwargs) -> bool:
    return invoice_mirror(provider=provider, state=invoice, occurred_at=occurred_at, event_id=event_id)[1]
