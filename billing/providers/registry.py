"""Provider adapters by name (each module is the only one that imports its SDK)."""

from __future__ import annotations

from billing.providers.base import PaymentProvider, ProviderNotSupported, SubscriptionEngine
from billing.providers.catalog import DatabaseCatalog
from billing.providers.lemonsqueezy import LemonSqueezyProvider
from billing.providers.models import ProviderAccount
from billing.providers.polar import PolarProvider
from billing.providers.stripe import StripeProvider

# our own subscription engines (billing/invoicing registers them when Django starts): the adapters
# of providers that only charge a saved method delegate their schedule to them
_ENGINES: dict[str, SubscriptionEngine] = {}


def engine_register(provider: str, engine: SubscriptionEngine) -> None:
    _ENGINES[provider] = engine


def provider_for(account: ProviderAccount) -> PaymentProvider:
    if account.provider == "sandbox":
        from billing.providers.sandbox import SandboxProvider

        return SandboxProvider(webhook_secret=account.webhook_secret, engine=_ENGINES.get("sandbox"))
    if account.provider == "stripe":
        engine_mode = account.credentials.get("billing") == "engine"
        return StripeProvider(
            webhook_secret=account.webhook_secret,
            api_key=account.credentials.get("api_key", ""),
            api_base=account.credentials.get("api_base", ""),
            mode=account.mode,
            engine=_ENGINES.get("stripe") if engine_mode else None,
        )
    if account.provider == "polar":
        credentials = account.credentials
        return PolarProvider(
            webhook_secret=account.webhook_secret,
            access_token=credentials.get("access_token", ""),
            mode=account.mode,  # test: Polar's sandbox, live: production
            organization_id=credentials.get("organization_id") or None,
            catalog=DatabaseCatalog(),
        )
    if account.provider == "lemonsqueezy":
        credentials = account.credentials
        return LemonSqueezyProvider(
            webhook_secret=account.webhook_secret,
            api_key=credentials.get("api_key", ""),
            store_id=str(credentials.get("store_id") or ""),
            mode=account.mode,
            catalog=DatabaseCatalog(),
        )
    if account.provider == "toss":
        from billing.providers.toss import TossProvider

        return TossProvider(
            webhook_secret=account.webhook_secret,
            credentials=account.credentials,
            mode=account.mode,
            engine=_ENGINES.get("toss"),
        )
    raise ProviderNotSupported(f"The {account.get_provider_display()} adapter is not available yet.")
