import time

from django.db import connection

from billing.providers.models import ProviderAccount

_webhook_accounts: dict[tuple[str, str], tuple[float, list[ProviderAccount]]] = {}
WEBHOOK_ACCOUNTS_CACHE_SECONDS = 10


def provider_accounts_for_webhook(*, provider: str) -> list[ProviderAccount]:
    """The accounts whose secrets may have signed a webhook of `provider` (test and live).
    Cached in-process for WEBHOOK_ACCOUNTS_CACHE_SECONDS: every delivery needs them, so a changed
    secret takes up to that long to reach every web process."""
    key = (connection.schema_name, provider)
    now = time.monotonic()
    hit = _webhook_accounts.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    accounts = list(ProviderAccount.objects.filter(provider=provider).order_by("mode"))
    _webhook_accounts[key] = (now + WEBHOOK_ACCOUNTS_CACHE_SECONDS, accounts)
    return accounts


def provider_accounts_cache_clear() -> None:
    _webhook_accounts.clear()


def provider_account_for_checkout(*, provider: str | None = None) -> ProviderAccount:
    """The named provider's account (live before test), else the tenant's default one."""
    from billing.providers.base import ProviderNotConfigured

    qs = ProviderAccount.objects.all()
    if provider in (None, "sandbox") and not qs.exists():
        # a fresh tenant pays through the built-in sandbox until staff configure a provider
        from billing.providers.services import provider_account_upsert

        return provider_account_upsert(provider="sandbox")
    account = (
        qs.filter(provider=provider).order_by("mode").first()
        if provider
        else qs.filter(is_default=True).first()
    )
    if account is None:
        raise ProviderNotConfigured(
            f"No {provider or 'default'} payment provider is configured for this tenant."
        )
    return account


def provider_accounts_per_provider() -> list[ProviderAccount]:
    """One account per configured provider (live before test), by provider name: the books
    reconciliation compares with."""
    accounts: dict[str, ProviderAccount] = {}
    for account in ProviderAccount.objects.order_by("provider", "mode"):
        accounts.setdefault(account.provider, account)
    return list(accounts.values())
