"""Stripe's webhook events mapped onto our dataclasses (the adapter's parse_event), and our
engine's own events, which arrive signed in Stripe's scheme (engine mode)."""

from __future__ import annotations

from billing.providers._common import (
    ENGINE_SUBSCRIPTION_TYPES,
    SUBSCRIPTION_STATUS,
    engine_event,
    timestamp,
)
from billing.providers._common import object_id as _id
from billing.providers.base import (
    CheckoutState,
    EventType,
    NormalizedEvent,
    PaymentState,
    SubscriptionState,
)
from billing.providers.invoices import stripe_invoice, stripe_invoice_metadata, stripe_invoice_subscription
from billing.providers.stripe_connect import stripe_account_state, stripe_payout_report

INVOICE_EVENTS = (
    "invoice.finalized", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
    "invoice.voided", "invoice.marked_uncollectible",
)  # fmt: skip


def parse_stripe_event(name: str, payload: dict) -> NormalizedEvent:
    """One verified Stripe event (or one of our engine's) as a NormalizedEvent."""
    kind = payload.get("type", "")
    if kind in ENGINE_SUBSCRIPTION_TYPES or kind in ("payment.succeeded", "payment.failed"):
        return engine_event(name, payload)  # our engine's (Stripe's own types never look so)
    obj = payload["data"]["object"]
    common = {
        "provider": name,
        "event_id": str(payload["id"]),
        "occurred_at": timestamp(payload["created"]),
        "raw_type": kind,
    }
    if kind == "account.updated":  # a creator's connected account (Connect)
        return NormalizedEvent(type=EventType.ACCOUNT_UPDATED, account=stripe_account_state(obj), **common)
    if kind in ("payout.paid", "payout.failed", "payout.canceled") and payload.get("account"):
        # a payout from a creator's connected account (Connect); the platform's own payouts are not ours
        report = stripe_payout_report(obj, account=str(payload["account"]))
        return NormalizedEvent(type=EventType.PAYOUT_UPDATED, payout=report, **common)
    if kind.startswith("customer.subscription."):
        item = obj["items"]["data"][0]
        metadata = obj.get("metadata") or {}
        status = SUBSCRIPTION_STATUS.get(obj["status"], obj["status"])
        if status == "active" and obj.get("pause_collection"):
            status = "paused"
        state = SubscriptionState(
            subscription_id=obj["id"],
            status=status,
            customer=metadata.get("monetize_customer", ""),
            # a price's lookup_key is our price code; a legacy plan (localstripe) carries only metadata
            price_ref=(item.get("price") or {}).get("lookup_key") or metadata.get("monetize_price", ""),
            quantity=int(item.get("quantity") or 1),
            period_start=timestamp(item.get("current_period_start") or obj.get("current_period_start")),
            period_end=timestamp(item.get("current_period_end") or obj.get("current_period_end")),
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            provider_customer_id=_id(obj.get("customer")),
            # an expanded customer carries its email: a Dashboard subscription is matched by it
            email=str((obj.get("customer") or {}).get("email") or "")
            if isinstance(obj.get("customer"), dict)
            else "",
        )
        types = {"created": EventType.SUBSCRIPTION_CREATED, "deleted": EventType.SUBSCRIPTION_CANCELED}
        return NormalizedEvent(
            type=types.get(kind.rsplit(".", 1)[1], EventType.SUBSCRIPTION_UPDATED),
            subscription=state,
            **common,
        )
    if kind in INVOICE_EVENTS:
        invoice = stripe_invoice(obj)
        if kind not in ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"):
            if invoice is None:  # a draft: mirrored once finalized
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
        # Stripe sends both invoice.paid and invoice.payment_succeeded for one invoice: the payment
        # is keyed on the invoice id, so it is recorded once (a $0 trial invoice is no payment:
        # memberships.payment_record skips it)
        payments = [p for p in ((obj.get("payments") or {}).get("data") or []) if isinstance(p, dict)]
        paid_with = (payments[0].get("payment") or {}) if payments else {}
        payment = PaymentState(
            payment_id=obj["id"],
            amount=int(obj.get("amount_paid") or obj.get("amount_due") or 0),
            currency=str(obj.get("currency", "")).lower(),
            customer=stripe_invoice_metadata(obj).get("monetize_customer", ""),
            subscription_id=stripe_invoice_subscription(obj),
            provider_customer_id=_id(obj.get("customer")),
            # older API versions name the charge and intent on the invoice; newer ones in its payments
            reference=_id(obj.get("charge")) or _id(paid_with.get("charge")),
            intent=_id(obj.get("payment_intent")) or _id(paid_with.get("payment_intent")),
            invoice=str(obj["id"]),
        )
        failed = kind == "invoice.payment_failed"
        return NormalizedEvent(
            type=EventType.PAYMENT_FAILED if failed else EventType.PAYMENT_SUCCEEDED,
            payment=payment,
            invoice=invoice,
            **common,
        )
    if kind == "charge.refunded":
        # each refund listed on the charge, keyed by its own id (refund.created and
        # charge.refund.updated name the same ids, so each refund is one row however it arrives);
        # a charge without the list (newer API versions) leaves them to refund.created
        listed = [r for r in ((obj.get("refunds") or {}).get("data") or []) if isinstance(r, dict)]
        refunds = tuple(
            _refund(r, charge=obj) for r in listed if r.get("status") not in ("failed", "canceled")
        )
        if not refunds:
            return NormalizedEvent(type=EventType.IGNORED, **common)
        return NormalizedEvent(
            type=EventType.REFUND_CREATED, payment=refunds[0], more_payments=refunds[1:], **common
        )
    if kind in ("refund.created", "refund.updated", "charge.refund.updated"):
        if obj.get("status") in ("failed", "canceled"):
            return NormalizedEvent(type=EventType.IGNORED, **common)
        return NormalizedEvent(type=EventType.REFUND_CREATED, payment=_refund(obj), **common)
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        if kind == "charge.dispute.created":
            type_ = EventType.DISPUTE_CREATED
        else:
            type_ = EventType.DISPUTE_LOST if obj.get("status") == "lost" else EventType.DISPUTE_WON
        payment = PaymentState(
            payment_id=str(obj["id"]),
            amount=int(obj.get("amount") or 0),
            currency=str(obj.get("currency", "")).lower(),
            customer=(obj.get("metadata") or {}).get("monetize_customer", ""),
            reference=_id(obj.get("charge")),
            intent=_id(obj.get("payment_intent")),
        )
        return NormalizedEvent(type=type_, payment=payment, **common)
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        metadata = obj.get("metadata") or {}
        checkout_id = str(metadata.get("monetize_checkout") or obj.get("client_reference_id") or "")
        email = str((obj.get("customer_details") or {}).get("email") or obj.get("customer_email") or "")
        checkout = CheckoutState(
            checkout_id=checkout_id, provider_customer_id=_id(obj.get("customer")), email=email
        )
        payment = None
        if obj.get("mode") == "payment" and obj.get("payment_status") in ("paid", "no_payment_required"):
            # a one-time purchase: recorded under its payment intent, as payment_intent.succeeded is
            payment = PaymentState(
                payment_id=_id(obj.get("payment_intent")) or str(obj["id"]),
                amount=int(obj.get("amount_total") or 0),
                currency=str(obj.get("currency") or "").lower(),
                customer=metadata.get("monetize_customer", ""),
                provider_customer_id=checkout.provider_customer_id,
                intent=_id(obj.get("payment_intent")),
                checkout_id=checkout_id,
                email=email,
                invoice=_id(obj.get("invoice")),
            )
        elif obj.get("mode") == "payment":  # paid later (async_payment_succeeded) or never
            return NormalizedEvent(type=EventType.IGNORED, **common)
        return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, checkout=checkout, **common)
    if kind == "payment_intent.succeeded":
        metadata = obj.get("metadata") or {}
        if not metadata.get("monetize_checkout"):
            # a subscription's payment intent: its invoice records it
            return NormalizedEvent(type=EventType.IGNORED, **common)
        payment = PaymentState(
            payment_id=str(obj["id"]),
            amount=int(obj.get("amount_received") or obj.get("amount") or 0),
            currency=str(obj.get("currency", "")).lower(),
            customer=metadata.get("monetize_customer", ""),
            provider_customer_id=_id(obj.get("customer")),
            reference=_id(obj.get("latest_charge")),
            intent=str(obj["id"]),
            checkout_id=str(metadata["monetize_checkout"]),
            invoice=_id(obj.get("invoice")),  # older API versions name the invoice it pays
        )
        return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, **common)
    return NormalizedEvent(type=EventType.IGNORED, **common)


def _refund(refund: dict, *, charge: dict | None = None) -> PaymentState:
    """One Stripe refund, keyed by its own id; its charge (when the event carries it) names the customer."""
    charge = charge or {}
    return PaymentState(
        payment_id=str(refund["id"]),
        amount=int(refund.get("amount") or 0),
        currency=str(refund.get("currency") or charge.get("currency") or "").lower(),
        customer=(charge.get("metadata") or {}).get("monetize_customer", ""),
        provider_customer_id=_id(charge.get("customer")),
        reference=_id(refund.get("charge")) or _id(charge.get("id")),
        intent=_id(refund.get("payment_intent")) or _id(charge.get("payment_intent")),
    )
