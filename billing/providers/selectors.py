from billing.providers.models import ProviderAccount


def provider_accounts_for_webhook(*, provider: str) -> list[ProviderAccount]:
    """The accounts whose secrets may have signed a webhook of `provider` (test and live)."""
    return list(ProviderAccount.objects.filter(provider=provider).order_by("mode"))
