from django.dispatch import Signal

# Sent inside the transaction that finalized invoices, once per invoice: our engine's (one, or a
# billing run's many at once) and mirrored provider invoices (created finalized); kwargs: invoices
# (a list). The ledger posts what they bill.
invoices_finalized = Signal()
# Sent inside the transaction that voided an invoice (ours, or a mirrored one the provider voided);
# kwargs: invoice. The ledger reverses what its finalization posted.
invoice_voided = Signal()
# Sent inside the transaction that issued a credit note (ours, or one a provider's refund made); kwargs:
# credit_note (its invoice's amount_credited already includes it). The ledger posts the correction.
credit_note_issued = Signal()
# Sent inside the transaction that marked an invoice uncollectible (ours, or a mirrored one); kwargs:
# invoice. The ledger writes off what was still due.
invoice_marked_uncollectible = Signal()
# Sent inside the transaction that applied a collected amount to an invoice; kwargs: invoice (after),
# amount, previous_status. The ledger recovers what it wrote off when an uncollectible invoice is paid.
invoice_payment_applied = Signal()
