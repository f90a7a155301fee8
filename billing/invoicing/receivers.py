"""Invoicing's side of what other apps announce (connected in InvoicingConfig.ready)."""

from __future__ import annotations

from billing.invoicing.credit_notes import credit_note_from_refund
from billing.invoicing.services import invoice_payment_link


def on_payment_recorded(sender, *, payment, charge=None, **kwargs) -> None:
    invoice_payment_link(payment=payment)
    credit_note_from_refund(payment=payment, charge=charge)
