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

from billing.invoicing.credit_notes._common import CREDITABLE, credit_note_payload
from billing.invoicing.credit_notes.create import credit_note_create
from billing.invoicing.credit_notes.refunds import (
    credit_note_from_refund,
    credit_note_refund_retry,
    credit_notes_refund_sweep,
)

__all__ = [
    "CREDITABLE",
    "credit_note_create",
    "credit_note_from_refund",
    "credit_note_payload",
    "credit_note_refund_retry",
    "credit_notes_refund_sweep",
]
