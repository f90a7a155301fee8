"""Provider payments meet our invoices: a recorded payment names the invoice it pays
(Payment.invoice_ref: our engine's `minv_<id>` or the provider's invoice id) and is linked to it
once, paying it (a charge) or announcing the failed attempt (a failed charge)."""

from __future__ import annotations

from django.db import transaction

from billing.invoicing.models import CollectedBy, Invoice, InvoicePayment, InvoiceStatus
from billing.invoicing.services import ENGINE_REF_PREFIX, _locked, _publish, invoice_payment_apply
from billing.memberships.models import Payment, PaymentKind


def _invoice_of_ref(*, provider: str, ref: str) -> Invoice | None:
    if ref.startswith(ENGINE_REF_PREFIX) and ref[len(ENGINE_REF_PREFIX) :].isdigit():
        query = {"pk": int(ref[len(ENGINE_REF_PREFIX) :]), "collected_by": CollectedBy.ENGINE}
    else:
        query = {"provider": provider, "provider_invoice_id": ref}
    return Invoice.objects.filter(**query).first()


def invoice_payment_link(*, payment: Payment, invoice: Invoice | None = None) -> InvoicePayment | None:
    """Link a recorded provider payment to the invoice it names (Payment.invoice_ref) and apply it:
    a charge pays the invoice (`invoice.paid` once nothing is due), a failed charge is announced as
    `invoice.payment_failed`. Runs when the payment is recorded and again when a provider's invoice
    is mirrored after its payment (the provider did not keep order); a payment is linked once."""
    if payment.kind not in (PaymentKind.CHARGE, PaymentKind.FAILED):
        return None
    with transaction.atomic():
        if invoice is None:
            if not payment.invoice_ref:
                return None
            invoice = _invoice_of_ref(provider=payment.provider, ref=payment.invoice_ref)
            if invoice is None:
                return None  # the invoice is not here yet; mirroring it links this payment then
        invoice = _locked(invoice.pk)
        if payment.currency.lower() != invoice.currency:
            return None
        applies = payment.kind == PaymentKind.CHARGE and invoice.status in (
            InvoiceStatus.OPEN,
            InvoiceStatus.UNCOLLECTIBLE,
        )
        link, created = InvoicePayment.objects.get_or_create(
            payment=payment, defaults={"invoice": invoice, "amount_applied": payment.amount if applies else 0}
        )
        if not created:
            return link
        if applies and payment.amount > 0:
            invoice_payment_apply(invoice_id=invoice.pk, amount=payment.amount)
        elif payment.kind == PaymentKind.FAILED and invoice.status == InvoiceStatus.OPEN:
            _publish("invoice.payment_failed", invoice)
    return link
