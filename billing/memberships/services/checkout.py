"""Checkouts: started through a provider, completed from its webhook or return, expired."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.utils import timezone

from billing.memberships.exceptions import (
    CheckoutInvalid,
    PriceNotSupportedByProvider,
)
from billing.memberships.models import (
    Checkout,
    CheckoutStatus,
    Customer,
    Membership,
    MembershipStatus,
)
from billing.memberships.services._common import _end_live, _notify_changed, _publish, _record
from billing.memberships.services.discounts import checkout_coupon_redeem
from billing.tiers.models import Interval, Price
from billing.tiers.selectors import tier_get

CHECKOUT_LIFETIME = dt.timedelta(hours=24)
MAX_SEATS = 10_000  # the API's bound on a checkout's quantity, kept by the pages too


def checkout_create(
    *,
    customer: Customer,
    success_url: str,
    cancel_url: str,
    price_code: str | None = None,
    tier_code: str | None = None,
    provider: str | None = None,
    quantity: int = 1,
    coupon_code: str | None = None,
) -> Checkout:
    """Start a checkout at the tenant's provider (the default one unless `provider` is named).
    With a tier, its active monthly price is used (else its cheapest active price). A coupon is
    checked now (unknown, inactive, expired, used up, for another tier or currency: refused before
    the provider is called) and redeemed when the checkout completes. Its terms go to the adapter:
    a provider that runs its own subscriptions (Stripe's, Polar, Lemon Squeezy) discounts its
    invoices with it (or refuses it, 422, before anything is made); where our engine runs the
    subscription, our invoices apply it."""
    from billing.discounts.selectors import coupon_get
    from billing.discounts.services import coupon_check
    from billing.providers.base import CheckoutRequest, CouponTerms
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    price = _checkout_price(price_code=price_code, tier_code=tier_code)
    if not 1 <= quantity <= MAX_SEATS:
        raise CheckoutInvalid(
            f"Choose between 1 and {MAX_SEATS:,} seats.", details={"quantity": quantity, "max": MAX_SEATS}
        )
    coupon = None
    if coupon_code is not None:
        coupon = coupon_get(code=coupon_code)
        coupon_check(coupon=coupon, tier=price.tier, currency=price.currency)
    account = provider_account_for_checkout(provider=provider)
    adapter = provider_for(account)
    price_supported(price=price, adapter=adapter, label=account.get_provider_display())
    with transaction.atomic():
        checkout = Checkout.objects.create(
            customer=customer,
            price=price,
            provider=account.provider,
            quantity=quantity,
            success_url=success_url,
            cancel_url=cancel_url,
            expires_at=timezone.now() + CHECKOUT_LIFETIME,
            coupon=coupon,
        )
        session = adapter.create_checkout(
            CheckoutRequest(
                checkout_id=str(checkout.pk),
                customer=customer.external_id,
                email=customer.email,
                price_ref=price.code,
                unit_amount=price.unit_amount,
                currency=price.currency,
                interval=price.interval,
                quantity=quantity,
                trial_days=price.trial_days,
                success_url=success_url,
                cancel_url=cancel_url,
                coupon=CouponTerms(
                    code=coupon.code,
                    duration=coupon.duration,
                    percent_off=coupon.percent_off,
                    amount_off=coupon.amount_off,
                    currency=coupon.currency,
                    duration_in_periods=coupon.duration_in_periods,
                )
                if coupon is not None
                else None,  # fmt: skip
            )
        )
        checkout.provider_checkout_id, checkout.url = session.provider_checkout_id, session.url
        checkout.save(update_fields=["provider_checkout_id", "url"])
    return checkout


def price_supported(*, price: Price, adapter, label: str = "") -> None:
    """Refuse a price the provider cannot bill (its adapter's `supported_models`; a price billed on a
    meter's usage needs a provider that rates usage) before anything is asked of it."""
    models = getattr(adapter, "supported_models", None)
    if models is None:
        return
    if price.model not in models or price.meter:
        what = f"billed on meter '{price.meter}'" if price.meter and price.model in models else price.model
        raise PriceNotSupportedByProvider(
            f"Price '{price.code}' is {what}: {label or adapter.name} can only bill "
            f"{' and '.join(sorted(m.replace('_', '-') for m in models))} prices without a meter.",
            details={"price": price.code, "model": price.model, "meter": price.meter or None,
                     "provider": adapter.name},
        )  # fmt: skip


def _checkout_price(*, price_code: str | None, tier_code: str | None) -> Price:
    if price_code:
        price = Price.objects.filter(code=price_code, active=True).select_related("tier").first()
        if price is None:
            raise CheckoutInvalid(f"No active price '{price_code}'.", details={"price": price_code})
    elif tier_code:
        tier = tier_get(code=tier_code)
        prices = list(
            tier.prices.filter(active=True).exclude(interval="one_time").order_by("unit_amount", "id")
        )
        price = next((p for p in prices if p.interval == "month"), prices[0] if prices else None)
        if price is None:
            raise CheckoutInvalid(
                f"Tier '{tier_code}' has no recurring price to check out.", details={"tier": tier_code}
            )
    else:
        raise CheckoutInvalid("Give a tier or a price.")
    if not price.code:
        raise CheckoutInvalid("Only prices with a code can be checked out.", details={"price": price.pk})
    return price


def checkout_mark_completed(*, checkout_id: str, occurred_at: dt.datetime) -> Checkout | None:
    """An open checkout completed by its subscription's event: mark it (once) and redeem its coupon.
    None: it was completed already, or is not ours."""
    with transaction.atomic():
        checkout = (
            Checkout.objects.select_for_update(of=("self",))
            .select_related("customer", "coupon")
            .filter(pk=checkout_id, status=CheckoutStatus.OPEN)
            .first()
        )
        if checkout is None:
            return None
        checkout.status, checkout.completed_at = CheckoutStatus.COMPLETED, occurred_at
        checkout.save(update_fields=["status", "completed_at"])
        checkout_coupon_redeem(checkout_id=checkout.pk)
    return checkout


def checkouts_expire(*, now: dt.datetime | None = None) -> int:
    """Open checkouts past their expiry become expired (beat, hourly)."""
    return Checkout.objects.filter(status=CheckoutStatus.OPEN, expires_at__lte=now or timezone.now()).update(
        status=CheckoutStatus.EXPIRED
    )


def checkout_complete(
    *,
    provider: str,
    checkout_id: str,
    occurred_at: dt.datetime,
    provider_customer_id: str = "",
    event_id: str = "",
) -> Checkout | None:
    """The provider reports our checkout paid: mark it completed (once), remember the provider's
    customer it made (later events that carry no metadata name only that), and grant what a
    one-time price buys: its tier, with no end (a recurring price's membership follows its
    subscription's events instead)."""
    try:
        uuid.UUID(str(checkout_id))
    except ValueError:
        return None
    with transaction.atomic():
        checkout = (
            Checkout.objects.select_for_update()
            .select_related("customer", "price__tier")
            .filter(pk=checkout_id, provider=provider)
            .first()
        )
        if checkout is None:
            return None
        if provider_customer_id and not checkout.provider_customer_id:
            checkout.provider_customer_id = provider_customer_id
            checkout.save(update_fields=["provider_customer_id"])
        if checkout.status == CheckoutStatus.COMPLETED:
            return checkout
        checkout.status, checkout.completed_at = CheckoutStatus.COMPLETED, occurred_at
        checkout.save(update_fields=["status", "completed_at"])
        checkout_coupon_redeem(checkout_id=checkout.pk)
        if checkout.price.interval == Interval.ONE_TIME:
            customer = checkout.customer
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            changed = _end_live(
                customer, at=occurred_at, reason="replaced", creator=checkout.price.tier.creator_id,
                event_id=event_id,
            )  # fmt: skip
            membership = Membership.objects.create(
                customer=customer, tier=checkout.price.tier, price=checkout.price, provider=provider,
                provider_customer_id=provider_customer_id, status=MembershipStatus.ACTIVE,
                quantity=checkout.quantity, started_at=occurred_at, provider_event_at=occurred_at,
            )  # fmt: skip
            _record(membership, reason=f"purchase:{provider}", event_id=event_id)
            _publish([*changed, membership], customer=customer.external_id)
            _notify_changed(customer.external_id)
    return checkout
