import json

from django.db import models
from django.db.models import Q

from monetize.crypto import decrypt, encrypt


class ProviderName(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox (built in)"
    STRIPE = "stripe", "Stripe"
    POLAR = "polar", "Polar"
    LEMONSQUEEZY = "lemonsqueezy", "Lemon Squeezy"
    TOSS = "toss", "TossPayments"


class ProviderMode(models.TextChoices):
    TEST = "test", "Test"
    LIVE = "live", "Live"


class ProviderAccount(models.Model):
    """A tenant's connection to a payment provider. Credentials and the webhook signing secret are
    stored encrypted (monetize.crypto); at most one account per provider+mode, one default."""

    provider = models.CharField(max_length=16, choices=ProviderName.choices)
    mode = models.CharField(max_length=4, choices=ProviderMode.choices, default=ProviderMode.TEST)
    is_default = models.BooleanField(default=False)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "mode"], name="providers_account_unique"),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="providers_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.mode})"

    @property
    def credentials(self) -> dict:
        return json.loads(decrypt(self.credentials_encrypted)) if self.credentials_encrypted else {}

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = encrypt(json.dumps(value))

    @property
    def webhook_secret(self) -> str:
        return decrypt(self.webhook_secret_encrypted) if self.webhook_secret_encrypted else ""

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.webhook_secret_encrypted = encrypt(value) if value else ""
