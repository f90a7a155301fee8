"""What the apps below post: a finalized invoice, a provider's charge, refund or lost dispute.

    invoice finalized (total > 0)   Dr receivable total; Cr deferred_revenue total - tax, Cr tax_payable tax
    charge                          Dr cash:<provider>; Cr receivable
      with a provider fee           + Dr provider_fees fee; Cr cash:<provider> fee (same transaction)
    refund                          Dr refunds; Cr cash:<provider>
    dispute lost                    Dr chargebacks; Cr cash:<provider>

A charge no invoice of ours names still credits `receivable` (money received in advance shows as a
negative receivable until its invoice is finalized).

Revenue recognition and corrections (billing.ledger.recognition, billing.ledger.corrections):

    recognized (daily, one-off)     Dr deferred_revenue; Cr revenue
    credit note (amount A, tax t)   Dr tax_payable t; Dr deferred_revenue u = min(A - t, unrecognized);
                                    Dr revenue A - t - u;
                                    Cr receivable (what was due, and credit given out of band),
                                    or Cr bad_debt (what was due on a written-off invoice),
                                    Cr refunds (the refund part: the provider's refund then posts
                                    Dr refunds / Cr cash, so `refunds` nets to zero for it)
    uncollectible                   Dr bad_debt; Cr receivable (what was still due)
    paid after a write-off          Dr receivable; Cr bad_debt (what the payment covers of it)
    void                            its finalization, credit notes and write-off reversed, and its
                                    recognized revenue taken back: Dr revenue; Cr deferred_revenue
The deferred revenue of an invoice never goes negative: a credit note takes back at most what is
left unrecognized, and recognition afterwards recognizes only what remains.
"""

from __future__ import annotations

from django.utils import timezone

from billing.invoicing.models import Invoice
from billing.ledger.services import Posting
from billing.memberships.models import Payment, PaymentKind

INVOICE_SOURCE = "invoice"
PAYMENT_SOURCE = "payment"


def invoice_posting(invoice: Invoice) -> Posting | None:
    """The posting of a finalized invoice: None when it bills nothing."""
    if invoice.total <= 0:
        return None
    currency = invoice.currency.lower()
    tax = min(max(invoice.tax, 0), invoice.total)
    entries = [("receivable", currency, invoice.total)]
    if invoice.total - tax:
        entries.append(("deferred_revenue", currency, -(invoice.total - tax)))
    if tax:
        entries.append(("tax_payable", currency, -tax))
    return Posting(
        source=INVOICE_SOURCE,
        source_id=str(invoice.pk),
        occurred_at=invoice.finalized_at or timezone.now(),
        description=f"Invoice {invoice.number} finalized",
        entries=entries,
        metadata={
            "invoice": invoice.pk, "number": invoice.number, "customer": invoice.customer.external_id,
            "collected_by": invoice.collected_by, "provider": invoice.provider,
        },
    )  # fmt: skip


_PAYMENT_DEBITS = {
    PaymentKind.CHARGE: None,  # cash is debited
    PaymentKind.REFUND: "refunds",
    PaymentKind.DISPUTE_LOST: "chargebacks",
}


def payment_posting(payment: Payment) -> Posting | None:
    """The posting of a provider-reported payment: None for a failed charge, an opened or won
    dispute, or an amount of zero."""
    if payment.kind not in _PAYMENT_DEBITS or payment.amount <= 0:
        return None
    cash = f"cash:{payment.provider.lower()}"
    currency = payment.currency.lower()
    debit = _PAYMENT_DEBITS[payment.kind]
    if debit is None:
        entries = [(cash, currency, payment.amount), ("receivable", currency, -payment.amount)]
        if payment.fee_amount > 0:  # what the provider kept never reached our cash there
            entries += [
                ("provider_fees", currency, payment.fee_amount),
                (cash, currency, -payment.fee_amount),
            ]
    else:
        entries = [(debit, currency, payment.amount), (cash, currency, -payment.amount)]
    return Posting(
        source=PAYMENT_SOURCE,
        source_id=str(payment.pk),
        occurred_at=payment.occurred_at,
        description=f"{payment.get_kind_display()} {payment.provider_payment_id} at {payment.provider}",
        entries=entries,
        metadata={
            "payment": payment.pk, "kind": payment.kind, "provider": payment.provider,
            "provider_payment_id": payment.provider_payment_id, "customer": payment.customer.external_id,
            "invoice_ref": payment.invoice_ref, "fee_amount": payment.fee_amount,
        },
    )  # fmt: skip
