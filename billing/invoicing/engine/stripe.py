"""Stripe in engine mode: a setup-mode Checkout Session saves the card; our engine does the rest.

`checkout_create` records the checkout and answers our page (`/stripe/setup/<id>/`), which opens
the Checkout Session when the customer arrives (so Stripe is sent our own absolute return URL);
Stripe brings the customer back to `/stripe/setup/<id>/done/?session_id=…`, where
`checkout_complete` reads the saved card and starts the subscription with its first charge, a
PaymentIntent keyed `invoice-<id>-<attempt>` (engine/core.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import transaction
from django.utils import timezone

from billing.invoicing.engine.changes import (
    subscription_cancel,
    subscription_change,
    subscription_method_update,
    subscription_pause,
    subscription_uncancel,
)
from billing.invoicing.engine.core import (
    EngineCheckoutNotFound,
    _adapter,
)
from billing.invoicing.engine.start import subscription_first_charge, subscription_start
from billing.providers.base import CheckoutRequest, CheckoutSession, ProviderError
from billing.providers.models import EngineCheckout, EngineStatus, EngineSubscription

__all__ = ["checkout_create", "checkout_complete", "checkout_method_saved", "method_session_complete",
           "method_session_url", "setup_session_url",
           "subscription_cancel", "subscription_change", "subscription_pause", "subscription_uncancel"]  # fmt: skip


class CardDeclined(ProviderError):
    code = "card_declined"
    status_code = 402


def checkout_create(request: CheckoutRequest, *, mode: str) -> CheckoutSession:
    """Record the checkout; the customer's browser goes to our page, which opens Stripe's."""
    if request.interval not in ("month", "year"):
        raise ProviderError(
            "Stripe in engine mode runs monthly or yearly prices; sell one-time prices through another account.",
            code="interval_not_supported", details={"interval": request.interval},
        )  # fmt: skip
    stripe_customer = (
        EngineCheckout.objects.filter(provider="stripe", customer=request.customer)
        .exclude(customer_key="")
        .values_list("customer_key", flat=True)
        .first()
    )  # the customer's Stripe Customer from an earlier checkout, if any
    EngineCheckout.objects.update_or_create(
        id=request.checkout_id,
        defaults={
            "provider": "stripe", "mode": mode, "customer": request.customer,
            "customer_key": stripe_customer or "", "email": request.email, "price": request.price_ref,
            "interval": request.interval, "unit_amount": request.unit_amount, "currency": request.currency.lower(),
            "quantity": request.quantity, "trial_days": request.trial_days, "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        },
    )  # fmt: skip
    return CheckoutSession(
        provider_checkout_id=request.checkout_id, url=f"/stripe/setup/{request.checkout_id}/"
    )


def setup_session_url(*, checkout_id: str, return_url: str, cancel_url: str) -> str:
    """The Stripe Checkout Session (setup mode) of our checkout: created once (keyed by the
    checkout), its Stripe Customer kept on the checkout."""
    checkout = EngineCheckout.objects.filter(pk=checkout_id, provider="stripe").first()
    if checkout is None:
        raise EngineCheckoutNotFound("No such Stripe checkout.")
    stripe_customer, _, url = _adapter("stripe", checkout.mode).setup_session_create(
        checkout_id=checkout.pk, customer=checkout.customer, email=checkout.email,
        stripe_customer=checkout.customer_key, success_url=return_url, cancel_url=cancel_url,
    )  # fmt: skip
    if stripe_customer != checkout.customer_key:
        EngineCheckout.objects.filter(pk=checkout.pk).update(customer_key=stripe_customer)
    return url


def checkout_complete(*, checkout_id: str, session_id: str, now: dt.datetime | None = None) -> EngineCheckout:
    """Stripe's return: read the card the session saved, then `checkout_method_saved`."""
    checkout = EngineCheckout.objects.filter(pk=checkout_id, provider="stripe").first()
    if checkout is None:
        raise EngineCheckoutNotFound("No such Stripe checkout.")
    if checkout.completed_at is not None:
        return checkout
    saved = _adapter("stripe", checkout.mode).setup_session_method(session_id=session_id)
    if checkout.customer_key and saved["customer"] != checkout.customer_key:
        raise ProviderError("This card was saved for another customer.", code="customer_mismatch")
    return checkout_method_saved(
        checkout_id=checkout_id, stripe_customer=saved["customer"], method=saved["method"],
        brand=saved["brand"], last4=saved["last4"], digest_of=session_id, now=now,
    )  # fmt: skip


def checkout_method_saved(
    *, checkout_id: str, stripe_customer: str, method: str, brand: str = "", last4: str = "",
    digest_of: str = "", now: dt.datetime | None = None,
) -> EngineCheckout:  # fmt: skip
    """A card saved on the customer's Stripe Customer starts the subscription and pays its first
    period. Safe to repeat: a completed checkout is returned as is; the same session after a
    refusal answers the same refusal (CardDeclined) without a new charge; another card is a new
    attempt with an invoice of its own."""
    now = now or timezone.now()
    digest = hashlib.sha256((digest_of or method).encode()).hexdigest()
    with transaction.atomic():
        checkout = (
            EngineCheckout.objects.select_for_update().filter(pk=checkout_id, provider="stripe").first()
        )
        if checkout is None:
            raise EngineCheckoutNotFound("No such Stripe checkout.")
        if checkout.completed_at is not None:
            return checkout
        if checkout.auth_key_digest == digest and checkout.error_code:
            raise CardDeclined(checkout.error_message, details={"stripe_code": checkout.error_code})
        checkout.customer_key = stripe_customer
        if checkout.subscription is None or checkout.auth_key_digest != digest:
            subscription_start(
                checkout, method=method, card_company=brand, card_number=f"•••• {last4}" if last4 else "",
                digest=digest, now=now,
            )  # fmt: skip
    subscription_first_charge(checkout, now=now, declined=CardDeclined)
    return checkout


def _method_subscription(customer: str) -> EngineSubscription:
    """The customer's live engine subscription at Stripe whose saved card the customer replaces."""
    sub = (
        EngineSubscription.objects.filter(provider="stripe", customer=customer)
        .exclude(status__in=[EngineStatus.CANCELED, EngineStatus.INCOMPLETE])
        .order_by("-created_at")
        .first()
    )
    if sub is None:
        raise ProviderError(
            "You have no Stripe subscription with a saved card.", code="subscription_not_found"
        )
    return sub


def method_session_url(*, customer: str, attempt: str, return_url: str, cancel_url: str) -> str:
    """A setup-mode Checkout Session on the customer's Stripe Customer that saves another card for
    their subscription (keyed by the subscription and this `attempt`)."""
    sub = _method_subscription(customer)
    _, _, url = _adapter("stripe", sub.mode).setup_session_create(
        checkout_id=f"method-{sub.pk}-{attempt}", customer=sub.customer, email=sub.email,
        stripe_customer=sub.customer_key, success_url=return_url, cancel_url=cancel_url,
    )  # fmt: skip
    return url


def method_session_complete(*, customer: str, session_id: str) -> str:
    """Stripe's return from that session: the saved card replaces the subscription's, and a past-due
    subscription is charged again at once with it (subscription_method_update's outcome: "updated",
    "paid", "failed" or "unavailable"). Safe to reload: the same card again is the same card."""
    sub = _method_subscription(customer)
    saved = _adapter("stripe", sub.mode).setup_session_method(session_id=session_id)
    if saved["customer"] != sub.customer_key:
        raise ProviderError("This card was saved for another customer.", code="customer_mismatch")
    return subscription_method_update(
        subscription_id=sub.pk, method=saved["method"], card_company=saved["brand"],
        card_number=f"•••• {saved['last4']}" if saved["last4"] else "",
    )  # fmt: skip
