"""Invoices of providers that run their own subscriptions (Stripe subscriptions, Polar, Lemon
Squeezy), mirrored from their webhooks into our Invoice (collected_by=provider), so a customer sees
one invoice list whatever the provider.

- One invoice per (provider, provider invoice id), however often and in whatever order its events
  arrive; it is created finalized, with the provider's own amounts, lines and number, in one go
  (a finalized invoice's money fields are frozen by the database). Our gapless sequence is not
  consumed: the provider issued that document under its own number (Stripe's `ABCD1234-0001`,
  Polar's invoice number, Lemon Squeezy's order number) and that is the number its emails and
  PDFs show; a provider that numbers nothing (a Lemon Squeezy renewal) shows its invoice id.
- The status only moves forward: open → uncollectible → paid | void (paid and void are final), so
  an `invoice.paid` that arrives before `invoice.finalized` leaves one paid invoice.
- `amount_paid` comes from the provider's payments linked to the invoice only (Payment.invoice_ref
  = the provider's invoice id, applied once each by invoice_payment_link), never from the
  provider's own `amount_paid` as well, so a paid invoice and its payment count once. An invoice the
  provider reports paid without a payment of ours (paid from the provider's customer balance, out
  of band, $0) is `paid` with what the payments covered.
- No tax is computed here: the provider's (merchant-of-record Polar and Lemon Squeezy compute their
  own) is kept as reported.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.events.services import event_publish
from billing.invoicing.models import (
    BillingReason,
    CollectedBy,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.invoicing.payments import invoice_payment_link
from billing.invoicing.services import customer_details, invoice_payload
from billing.invoicing.signals import invoice_marked_uncollectible, invoice_voided, invoices_finalized
from billing.memberships.exceptions import CustomerUnmatched, PaymentCustomerUnknown
from billing.memberships.models import Customer, Membership, Payment, PaymentKind
from billing.memberships.services import customer_upsert
from billing.memberships.services.provider_sync import _customer_of_provider
from billing.providers.base import InvoiceLineState, InvoiceState
from billing.providers.models import ProviderProduct
from billing.tiers.models import Price

_RANK = {
    InvoiceStatus.OPEN: 1,
    InvoiceStatus.UNCOLLECTIBLE: 2,
    InvoiceStatus.PAID: 3,
    InvoiceStatus.VOID: 3,
}
_EVENTS = {
    InvoiceStatus.PAID: "invoice.paid",
    InvoiceStatus.VOID: "invoice.voided",
    InvoiceStatus.UNCOLLECTIBLE: "invoice.marked_uncollectible",
}


def _publish(kind: str, invoice: Invoice) -> None:
    event_publish(type=kind, customer=invoice.customer.external_id, payload=invoice_payload(invoice))


def invoice_mirror(
    *, provider: str, state: InvoiceState, occurred_at: dt.datetime, event_id: str = ""
) -> tuple[Invoice, bool]:
    """Apply a provider's view of one of its invoices: create it once (finalized, with the
    provider's amounts), link the payments that named it before it came, then move its status
    forward to the provider's. Returns (invoice, changed)."""
    with transaction.atomic():
        invoice = _locked(provider, state.invoice_id)
        created = invoice is None
        if created:
            invoice = _create(provider=provider, state=state, occurred_at=occurred_at)
        linked = _link_payments(invoice, provider=provider)
        moved = _advance(invoice.pk, status=state.status, occurred_at=occurred_at)
        invoice.refresh_from_db()
    return invoice, created or linked or moved


def _locked(provider: str, invoice_id: str) -> Invoice | None:
    return (
        Invoice.objects.select_for_update()
        .select_related("customer")
        .filter(provider=provider, provider_invoice_id=invoice_id)
        .first()
    )


def _customer(provider: str, state: InvoiceState) -> Customer:
    if state.customer:
        return customer_upsert(external_id=state.customer)[0]
    found = _customer_of_provider(
        provider,
        subscription_id=state.subscription_id,
        provider_customer_id=state.provider_customer_id,
        email=state.email,
    )
    if found is not None:
        return found
    if state.subscription_id or state.provider_customer_id:
        # its subscription's (or checkout's) event has not been applied yet: the inbox retries
        raise PaymentCustomerUnknown(
            f"No customer yet for {provider} invoice {state.invoice_id} "
            f"(subscription '{state.subscription_id or '-'}', customer '{state.provider_customer_id or '-'}')."
        )
    raise CustomerUnmatched(
        f"The {provider} invoice {state.invoice_id} names none of our customers.",
        details={"invoice": state.invoice_id},
    )


def _price(provider: str, line: InvoiceLineState) -> Price | None:
    if line.price_ref:
        found = Price.objects.filter(code=line.price_ref).order_by("-active", "-id").first()
        if found is not None:
            return found
    if line.provider_price_id:
        mapped = (
            ProviderProduct.objects.filter(provider=provider, external_price_id=line.provider_price_id)
            .select_related("price")
            .order_by("-id")
            .first()
        )
        if mapped is not None:
            return mapped.price
    return None


def _line(invoice: Invoice, line: InvoiceLineState, price: Price | None) -> InvoiceLine:
    if line.proration:
        kind = LineKind.PRORATION
    else:
        kind = LineKind.USAGE if price is not None and price.meter else LineKind.FEE
    return InvoiceLine(
        invoice=invoice,
        kind=kind,
        description=(line.description or (price.tier.name if price is not None else "") or "Charge")[:300],
        quantity=line.quantity,
        unit_amount=line.unit_amount if line.unit_amount is not None else 0,
        amount=line.amount,
        price=price,
        meter=price.meter if price is not None and price.meter else "",
        period_start=line.period_start,
        period_end=line.period_end,
        proration=line.proration,
    )


def _create(*, provider: str, state: InvoiceState, occurred_at: dt.datetime) -> Invoice:
    customer = _customer(provider, state)
    membership = (
        Membership.objects.filter(provider=provider, provider_subscription_id=state.subscription_id).first()
        if state.subscription_id
        else None
    )
    # a provider may bill less than nothing (a downgrade's credit): the invoice bills nothing, as ours
    subtotal, total = max(state.subtotal, 0), max(state.total, 0)
    invoice = Invoice(
        customer=customer,
        membership=membership,
        number=(state.number or state.invoice_id)[:40],
        status=InvoiceStatus.OPEN,
        currency=state.currency.lower(),
        subtotal=subtotal,
        discount=max(state.discount, 0),
        tax=max(state.tax, 0),
        total=total,
        billing_reason=state.billing_reason
        if state.billing_reason in BillingReason.values
        else BillingReason.MANUAL,
        collected_by=CollectedBy.PROVIDER,
        provider=provider,
        provider_invoice_id=state.invoice_id,
        period_start=state.period_start,
        period_end=state.period_end,
        customer_details=customer_details(customer),
        finalized_at=occurred_at,
        due_at=occurred_at,
    )
    try:
        with transaction.atomic():  # two events of one invoice applied at once: the unique key decides
            invoice.save()
    except IntegrityError:
        found = _locked(provider, state.invoice_id)
        if found is None:
            raise
        return found
    prices = [_price(provider, line) for line in state.lines]
    unpriced = [i for i, line in enumerate(state.lines) if prices[i] is None and not line.proration]
    if len(unpriced) == 1 and membership is not None:
        # the one fee line that names no price of ours (Stripe's newer API names only its own price
        # id, a Lemon Squeezy renewal no price at all) is the subscription's
        prices[unpriced[0]] = membership.price
    InvoiceLine.objects.bulk_create(
        [_line(invoice, line, price) for line, price in zip(state.lines, prices, strict=True)]
    )
    _publish("invoice.created", invoice)
    _publish("invoice.finalized", invoice)
    invoices_finalized.send(sender=Invoice, invoices=[invoice])
    return invoice


def _link_payments(invoice: Invoice, *, provider: str) -> bool:
    """Payments that named this invoice before it was mirrored (the provider did not keep order)."""
    waiting = list(
        Payment.objects.filter(
            provider=provider,
            invoice_ref=invoice.provider_invoice_id,
            kind__in=(PaymentKind.CHARGE, PaymentKind.FAILED),
            invoice_link__isnull=True,
        ).order_by("occurred_at", "id")
    )
    for payment in waiting:
        invoice_payment_link(payment=payment, invoice=invoice)
    return bool(waiting)


def _advance(invoice_id: int, *, status: str, occurred_at: dt.datetime) -> bool:
    """Move the status forward to the provider's (never back: paid and void are final)."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)
    if _RANK.get(status, 0) <= _RANK.get(invoice.status, 0):
        return False
    invoice.status = status
    if status == InvoiceStatus.PAID:
        invoice.paid_at = occurred_at or timezone.now()
    elif status == InvoiceStatus.VOID:
        invoice.voided_at = occurred_at or timezone.now()
    invoice.save(update_fields=["status", "paid_at", "voided_at"])
    if status == InvoiceStatus.VOID:
        invoice_voided.send(sender=Invoice, invoice=invoice)
    elif status == InvoiceStatus.UNCOLLECTIBLE:
        invoice_marked_uncollectible.send(sender=Invoice, invoice=invoice)
    _publish(_EVENTS[status], invoice)
    return True
