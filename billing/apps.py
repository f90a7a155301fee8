from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Tiers, memberships, entitlements, metering, payouts, providers and webhooks (later issues)."""

    name = "billing"
    verbose_name = "Billing"
