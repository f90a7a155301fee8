from django.dispatch import Signal

# Sent inside the transaction that finalized invoices, once per invoice: our engine's (one, or a
# billing run's many at once) and mirrored provider invoices (created finalized); kwargs: invoices
# (a list). The ledger posts what they bill.
invoices_finalized = Signal()
# Sent inside the transaction that voided an invoice (ours, or a mirrored one the provider voided);
# kwargs: invoice. The ledger reverses what its finalization posted.
invoice_voided = Signal()
