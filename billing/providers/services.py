from __future__ import annotations

import base64
import secrets

from django.db import transaction

from billing.providers.models import ProviderAccount, ProviderMode, ProviderName
from billing.providers.selectors import provider_accounts_cache_clear


def webhook_secret_generate() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def provider_account_upsert(
    *,
    provider: str,
    mode: str = ProviderMode.TEST,
    credentials: dict | None = None,
    webhook_secret: str | None = None,
    make_default: bool = False,
) -> ProviderAccount:
    """Configure a provider for the active tenant (credentials and secret are stored encrypted).
    The sandbox gets a generated webhook secret when none is given."""
    with transaction.atomic():
        account, _ = ProviderAccount.objects.select_for_update().get_or_create(provider=provider, mode=mode)
        if credentials is not None:
            account.credentials = credentials
        if webhook_secret:
            account.webhook_secret = webhook_secret
        elif provider == ProviderName.SANDBOX and not account.webhook_secret_encrypted:
            account.webhook_secret = webhook_secret_generate()
        if (
            make_default
            or not ProviderAccount.objects.filter(is_default=True).exclude(pk=account.pk).exists()
        ):
            ProviderAccount.objects.filter(is_default=True).exclude(pk=account.pk).update(is_default=False)
            account.is_default = True
        account.save()
        transaction.on_commit(provider_accounts_cache_clear)
    provider_accounts_cache_clear()
    return account
