"""TossPayments on our engine: the checkout that issues a billing key.

Our page opens Toss's billing-auth window (`/toss/checkout/<id>/`); its successUrl brings
`customerKey` and `authKey` back; we issue the billing key, start the schedule and charge the
first period (engine/core.py does the rest, as for every saved-method provider).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from django.db import transaction
from django.utils import timezone

from billing.invoicing.engine.changes import (
    charge_owner,
    subscription_cancel,
    subscription_change,
    subscription_method_update,
    subscription_pause,
    subscription_uncancel,
)
from billing.invoicing.engine.core import (
    EngineCheckoutMismatch,
    EngineCheckoutNotFound,
    _adapter,
)
from billing.invoicing.engine.start import subscription_first_charge, subscription_start
from billing.providers.base import CheckoutRequest, CheckoutSession, ProviderError
from billing.providers.models import EngineCheckout, EngineStatus, EngineSubscription, TossCustomer
from billing.providers.toss import TossCardDeclined, customer_key_generate

__all__ = ["charge_owner", "checkout_create", "checkout_complete", "method_subscription", "method_update",
           "subscription_cancel", "subscription_change", "subscription_pause", "subscription_uncancel"]  # fmt: skip


def checkout_create(request: CheckoutRequest, *, mode: str) -> CheckoutSession:
    """Record the checkout our page hosts (KRW only) and the customer's random customerKey."""
    _adapter("toss", mode).validate_terms(
        currency=request.currency, interval=request.interval, amount=request.unit_amount * request.quantity
    )
    toss_customer, _ = TossCustomer.objects.get_or_create(
        customer=request.customer, defaults={"customer_key": customer_key_generate()}
    )
    EngineCheckout.objects.update_or_create(
        id=request.checkout_id,
        defaults={
            "provider": "toss",
            "mode": mode,
            "customer": request.customer,
            "customer_key": toss_customer.customer_key,
            "email": request.email,
            "price": request.price_ref,
            "interval": request.interval,
            "unit_amount": request.unit_amount,
            "currency": request.currency.lower(),
            "quantity": request.quantity,
            "trial_days": request.trial_days,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        },
    )
    return CheckoutSession(
        provider_checkout_id=request.checkout_id, url=f"/toss/checkout/{request.checkout_id}/"
    )


def checkout_complete(
    *, checkout_id: str, customer_key: str, auth_key: str, now: dt.datetime | None = None
) -> EngineCheckout:
    """Toss's successUrl: issue the billing key, start the schedule, charge the first period.

    Safe to repeat: a completed checkout is returned as is; the same authKey after a refusal
    answers the same refusal (TossCardDeclined) without a new charge; a new authKey (the customer
    tried another card) replaces the billing key and makes a new attempt."""
    now = now or timezone.now()
    digest = hashlib.sha256(auth_key.encode()).hexdigest()
    with transaction.atomic():
        checkout = EngineCheckout.objects.select_for_update().filter(pk=checkout_id, provider="toss").first()
        if checkout is None:
            raise EngineCheckoutNotFound("No such TossPayments checkout.")
        if not hmac.compare_digest(checkout.customer_key, customer_key):
            raise EngineCheckoutMismatch("This authorization belongs to another customer.")
        if checkout.completed_at is not None:
            return checkout
        if checkout.auth_key_digest == digest and checkout.error_code:
            raise TossCardDeclined(checkout.error_message, details={"toss_code": checkout.error_code})
        if checkout.subscription is None or checkout.auth_key_digest != digest:
            billing = _adapter("toss", checkout.mode).issue_billing_key(
                auth_key=auth_key, customer_key=checkout.customer_key
            )
            billing_key = billing.get("billingKey")
            if not isinstance(billing_key, str) or not billing_key:
                raise ProviderError("TossPayments issued no billing key.", code="toss_no_billing_key")
            card = billing.get("card") if isinstance(billing.get("card"), dict) else {}
            subscription_start(
                checkout, method=billing_key, digest=digest, now=now,
                card_company=str(billing.get("cardCompany") or card.get("issuerCode") or ""),
                card_number=str(billing.get("cardNumber") or card.get("number") or ""),
            )  # fmt: skip
    # the subscription and its charge row are committed before Toss is asked for money
    try:
        subscription_first_charge(checkout, now=now, declined=TossCardDeclined)
    except TossCardDeclined as exc:
        raise TossCardDeclined(exc.message, details={"toss_code": checkout.error_code}) from None
    return checkout


def method_subscription(*, customer: str, prefer: str = "") -> EngineSubscription | None:
    """The customer's live TossPayments subscription whose card "update payment method" replaces:
    `prefer` (the plan's subscription id) when it is live, else a past-due one, else the newest."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        EngineSubscription.objects.filter(provider="toss", customer=customer)
        .exclude(status__in=[EngineStatus.CANCELED, EngineStatus.INCOMPLETE])
        .order_by(
            Case(
                When(pk=prefer or None, then=Value(0)),
                When(status=EngineStatus.PAST_DUE, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
            "-created_at",
        )
        .first()
    )


def method_update(*, subscription_id: str, customer_key: str, auth_key: str) -> str:
    """Toss's billing-auth window came back (successUrl: `customerKey`, `authKey`) from "update
    payment method": issue the new billing key and put it on the subscription; a past-due one is
    charged again at once (engine.changes.subscription_method_update). Returns its outcome:
    "updated", "paid", "failed" or "unavailable"."""
    sub = EngineSubscription.objects.filter(pk=subscription_id, provider="toss").first()
    if sub is None:
        raise EngineCheckoutNotFound("No such TossPayments subscription.")
    if not hmac.compare_digest(sub.customer_key, customer_key):
        raise EngineCheckoutMismatch("This authorization belongs to another customer.")
    billing = _adapter("toss", sub.mode).issue_billing_key(auth_key=auth_key, customer_key=sub.customer_key)
    billing_key = billing.get("billingKey")
    if not isinstance(billing_key, str) or not billing_key:
        raise ProviderError("TossPayments issued no billing key.", code="toss_no_billing_key")
    card = billing.get("card") if isinstance(billing.get("card"), dict) else {}
    return subscription_method_update(
        subscription_id=sub.pk, method=billing_key,
        card_company=str(billing.get("cardCompany") or card.get("issuerCode") or ""),
        card_number=str(billing.get("cardNumber") or card.get("number") or ""),
    )  # fmt: skip
