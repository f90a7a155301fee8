"""Tips: a fan's one-time payment to a creator through the provider's hosted checkout (the
sandbox's; Stripe Checkout in payment mode, on a product and price Stripe has for this creator,
currency and amount, made before the checkout). Only the provider's report of the paid order
credits anyone (earnings.earning_record); creating the checkout, or an `order.created`, credits
nothing."""

from __future__ import annotations

import re

from django.db import connection, transaction

from billing.ledger.creators.exceptions import TipAmountOutOfRange, TipInvalid
from billing.ledger.creators.models import Creator, Tip
from billing.memberships.models import Customer
from billing.tiers.models import Interval

_CURRENCY = re.compile(r"^[a-z]{3}$")
TIP_PROVIDERS = ("sandbox", "stripe")


def tip_checkout_create(
    *,
    creator: Creator,
    customer: Customer,
    amount: int,
    currency: str,
    success_url: str,
    cancel_url: str,
    item_id: str = "",
    provider: str | None = None,
) -> Tip:
    """Start a tip's checkout at the tenant's provider (the default unless `provider` is named):
    the amount must lie within the tenant's tip range (422 otherwise, before any provider call).
    The tip's row id is the checkout's id at the provider (its idempotency key)."""
    from billing.providers.base import CheckoutRequest, ProviderNotSupported
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    currency = (currency or "").lower()
    if not _CURRENCY.match(currency):
        raise TipInvalid("A currency is a three-letter ISO 4217 code.", details={"field": "currency"})
    tenant = connection.tenant
    low, high = int(tenant.tip_min_amount), int(tenant.tip_max_amount)
    if not low <= amount <= high:
        raise TipAmountOutOfRange(
            f"A tip is between {low} and {high} (minor units of {currency}).",
            details={"amount": amount, "min": low, "max": high},
        )
    account = provider_account_for_checkout(provider=provider)
    adapter = provider_for(account)
    stripe_engine_mode = account.provider == "stripe" and getattr(adapter, "engine", None) is not None
    if account.provider not in TIP_PROVIDERS or stripe_engine_mode:
        # a one-time payment at the provider's hosted checkout: the sandbox's, and Stripe Checkout
        # in payment mode (not engine mode, whose checkout only saves a card for subscriptions)
        raise ProviderNotSupported(
            f"Tips through {account.get_provider_display()} are not available yet.",
            details={"provider": account.provider},
        )
    with transaction.atomic():
        tip = Tip.objects.create(
            creator=creator, customer=customer, amount=amount, currency=currency, item_id=item_id,
            provider=account.provider, success_url=success_url, cancel_url=cancel_url,
        )  # fmt: skip
        session = adapter.create_checkout(
            CheckoutRequest(
                checkout_id=str(tip.pk),
                customer=customer.external_id,
                email=customer.email,
                # what the fan pays for, by name: the provider finds or makes a product and price for
                # this creator, currency and amount before the checkout (never our row id)
                price_ref=f"tip-{creator.handle}-{currency}-{amount}",
                unit_amount=amount,
                currency=currency,
                interval=Interval.ONE_TIME,
                quantity=1,
                trial_days=0,
                success_url=success_url,
                cancel_url=cancel_url,
            )
        )
        tip.provider_checkout_id, tip.url = session.provider_checkout_id, session.url
        tip.save(update_fields=["provider_checkout_id", "url"])
    return tip
