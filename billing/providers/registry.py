"""Provider adapters by name (each module is the only one that imports its SDK)."""

from __future__ import annotations

from billing.providers.base import PaymentProvider, ProviderNotSupported
from billing.providers.lemonsqueezy import LemonSqueezyProvider
from billing.providers.models import ProviderAccount
from billing.providers.polar import PolarProvider
from billing.providers.stripe import StripeProvider

HOSTED = {"stripe": StripeProvider, "polar": PolarProvider, "lemonsqueezy": LemonSqueezyProvider}


def provider_for(account: ProviderAccount) -> PaymentProvider:
    if account.provider == "sandbox":
        from billing.providers.sandbox import SandboxProvider

        return SandboxProvider(webhook_secret=account.webhook_secret)
    if account.provider == "stripe":
        return StripeProvider(
            webhook_secret=account.webhook_secret, api_key=account.credentials.get("api_key", "")
        )
    if account.provider in HOSTED:
        return HOSTED[account.provider](webhook_secret=account.webhook_secret)
    raise ProviderNotSupported(f"The {account.get_provider_display()} adapter is not available yet.")
