import json

from django.db import models
from django.db.models import Q

from kernel.crypto import decrypt, encrypt


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
    stored encrypted (kernel.crypto); at most one account per provider+mode, one default."""

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


class SandboxClock(models.Model):
    """The sandbox's idea of now: real time plus `offset_seconds` (moved by `sandbox_advance`)."""

    offset_seconds = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"+{self.offset_seconds}s"


class ProviderProduct(models.Model):
    """Our price as an object at a provider (a Polar product, a Lemon Squeezy variant): created at
    the provider before any checkout offers it, or entered by staff where the provider's API cannot
    create one. One per provider, mode and price; price terms are immutable, so it never goes stale."""

    provider = models.CharField(max_length=16, choices=ProviderName.choices)
    mode = models.CharField(max_length=4, choices=ProviderMode.choices, default=ProviderMode.TEST)
    price = models.ForeignKey("tiers.Price", on_delete=models.PROTECT, related_name="provider_products")
    external_product_id = models.CharField(max_length=255)
    external_price_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "mode", "price"], name="providers_product_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.external_product_id} ({self.price_id})"


class ProviderDiscount(models.Model):
    """Our coupon as a discount at a provider that runs its own subscriptions (a Polar discount, a
    Lemon Squeezy discount code): created on its first checkout, then reused. One per provider, mode,
    coupon and length in months (`months`: a repeating coupon's periods counted in the price's
    interval, 0 otherwise); coupon terms are immutable, so it never goes stale."""

    provider = models.CharField(max_length=16, choices=ProviderName.choices)
    mode = models.CharField(max_length=4, choices=ProviderMode.choices, default=ProviderMode.TEST)
    coupon_code = models.CharField(max_length=64)
    months = models.PositiveIntegerField(default=0)
    external_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "mode", "coupon_code", "months"], name="providers_discount_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.external_id} ({self.coupon_code})"


class EngineStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete (first charge not paid)"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


class TossCustomer(models.Model):
    """Our TossPayments `customerKey` for one customer: random and unguessable (Toss requires it
    not to be derivable from an email or a sequence). One per customer, reused by every checkout."""

    customer = models.CharField(max_length=255, unique=True)  # our Customer.external_id
    customer_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.customer


class EngineSubscription(models.Model):
    """A subscription our engine runs for a provider that only charges a saved payment method
    (TossPayments: a billing key; Stripe in engine mode: a PaymentMethod; the sandbox: a test card's
    behaviour, `ok` or `fails_at_renewal`): the schedule the charge
    job follows. `period_number` is the last paid period (0 before the first charge); the saved
    method (`billing_key`) is stored encrypted (kernel.crypto); `customer_key` is the provider's
    customer (Toss's customerKey, Stripe's Customer id)."""

    id = models.CharField(max_length=40, primary_key=True)
    provider = models.CharField(max_length=16, default="toss")
    mode = models.CharField(max_length=4, choices=ProviderMode.choices, default=ProviderMode.TEST)
    customer = models.CharField(max_length=255)  # our Customer.external_id
    customer_key = models.CharField(max_length=64)
    email = models.CharField(max_length=254, blank=True)
    billing_key_encrypted = models.TextField(blank=True, editable=False)
    card_company = models.CharField(max_length=32, blank=True)
    card_number = models.CharField(max_length=32, blank=True)  # masked by Toss
    price = models.CharField(max_length=64)  # our Price.code
    interval = models.CharField(max_length=8)
    unit_amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="krw")
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=EngineStatus.choices, default=EngineStatus.INCOMPLETE)
    period_number = models.PositiveIntegerField(default=0)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    # a change of price waits for the next period: the terms that take over at the renewal
    pending_price = models.CharField(max_length=64, blank=True)
    pending_unit_amount = models.BigIntegerField(null=True, blank=True)
    pending_interval = models.CharField(max_length=8, blank=True)
    pending_quantity = models.PositiveIntegerField(null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "period_end"]),
            models.Index(fields=["status", "next_retry_at"]),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def billing_key(self) -> str:
        return decrypt(self.billing_key_encrypted) if self.billing_key_encrypted else ""

    @billing_key.setter
    def billing_key(self, value: str) -> None:
        self.billing_key_encrypted = encrypt(value) if value else ""


class EngineCheckout(models.Model):
    """A checkout that saves a payment method for our engine (id = our Checkout id): Toss's
    billing-auth window on our page, or a Stripe Checkout Session in setup mode.
    `auth_key_digest` is the SHA-256 of the last authorization handled (Toss's authKey, Stripe's
    session id), so a reloaded success URL replays its outcome instead of charging again."""

    id = models.CharField(max_length=40, primary_key=True)
    provider = models.CharField(max_length=16, default="toss")
    mode = models.CharField(max_length=4, choices=ProviderMode.choices, default=ProviderMode.TEST)
    customer = models.CharField(max_length=255)
    customer_key = models.CharField(max_length=64)
    email = models.CharField(max_length=254, blank=True)
    price = models.CharField(max_length=64)
    interval = models.CharField(max_length=8)
    unit_amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    quantity = models.PositiveIntegerField(default=1)
    trial_days = models.PositiveIntegerField(default=0)
    success_url = models.URLField(max_length=2000)
    cancel_url = models.URLField(max_length=2000)
    subscription = models.OneToOneField(
        EngineSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkout"
    )
    auth_key_digest = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # a one-time payment's (interval one_time: a tip) own record at the sandbox: its payment id and
    # the fee kept, so the sandbox's books (balance_transactions) list it like a subscription charge
    payment_key = models.CharField(max_length=200, blank=True)
    fee_amount = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class EngineChargeStatus(models.TextChoices):
    PENDING = "pending", "Pending (an attempt may be in flight)"
    DONE = "done", "Paid"
    FAILED = "failed", "Failed (waiting for a retry)"
    VOID = "void", "Void (the subscription ended unpaid)"


class EngineChargeKind(models.TextChoices):
    PERIOD = "period", "A period's invoice"
    PRORATION = "proration", "An upgrade's proration"


class EngineCharge(models.Model):
    """A charge of one invoice of a subscription, created BEFORE any call to the provider: a
    period's charge is unique per (subscription, period), so a re-run or a crash never charges a
    period twice; an upgrade's proration is charged at once, as a charge of its own.
    `order_id` is the attempt's idempotency key: Toss `tsub-<sub id>-<period>` (its orderId, which
    must be unique at Toss forever) and Stripe `invoice-<invoice id>-<attempt>`; a dunning retry is
    a new attempt with a new key (Toss replays a key's first answer for 15 days)."""

    subscription = models.ForeignKey(EngineSubscription, on_delete=models.PROTECT, related_name="charges")
    period = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField(default=1)
    order_id = models.CharField(max_length=64, unique=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="krw")
    status = models.CharField(
        max_length=8, choices=EngineChargeStatus.choices, default=EngineChargeStatus.PENDING
    )
    payment_key = models.CharField(max_length=200, blank=True, db_index=True)
    fee_amount = models.BigIntegerField(default=0)  # what the sandbox kept of it (its simulated fee)
    paid_at = models.DateTimeField(null=True, blank=True)  # on the provider's clock (the sandbox's own)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # the invoice this charge collects (invoicing's id: no foreign key up the layers) and whether it
    # is the last one (the usage of a period that ends the subscription)
    invoice_id = models.BigIntegerField(null=True, blank=True)
    final = models.BooleanField(default=False)
    kind = models.CharField(max_length=10, choices=EngineChargeKind.choices, default=EngineChargeKind.PERIOD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period"],
                condition=models.Q(kind="period"),
                name="providers_engine_charge_period_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.order_id


class SandboxRefund(models.Model):
    """A refund the sandbox made (its own record, as a provider's books would hold it; reconciliation
    compares ours with it): once per refund id, which derives from the caller's idempotency key."""

    refund_id = models.CharField(max_length=64, unique=True)
    payment_id = models.CharField(max_length=255)  # the sandbox charge it refunds
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.refund_id
