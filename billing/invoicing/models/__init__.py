"""Invoicing's models: invoices and their lines and payments (invoices.py), credit notes
(credit_notes.py), tax rates and the discounts and taxes recorded on invoices (adjustments.py)."""

from billing.invoicing.models.adjustments import (
    TAX_RATE_TERMS,
    CreditValue,
    InvoiceDiscount,
    InvoiceTax,
    TaxRate,
)
from billing.invoicing.models.credit_notes import (
    CREDIT_NOTE_FROZEN,
    CreditNote,
    CreditNoteLine,
    CreditNoteOrigin,
    CreditNoteReason,
    CreditNoteStatus,
)
from billing.invoicing.models.invoices import (
    AMOUNT_DUE,
    FROZEN,
    ISSUED_AT,
    BillingReason,
    CollectedBy,
    Invoice,
    InvoiceLine,
    InvoiceNumbering,
    InvoicePayment,
    InvoiceStatus,
    LineKind,
)

__all__ = [
    "AMOUNT_DUE", "CREDIT_NOTE_FROZEN", "FROZEN", "ISSUED_AT", "TAX_RATE_TERMS", "BillingReason", "CollectedBy", "CreditNote", "CreditValue",
    "CreditNoteLine", "CreditNoteOrigin", "CreditNoteReason", "CreditNoteStatus", "Invoice", "InvoiceDiscount",
    "InvoiceLine", "InvoiceNumbering", "InvoicePayment", "InvoiceStatus", "InvoiceTax", "LineKind", "TaxRate",
]  # fmt: skip
