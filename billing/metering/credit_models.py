"""Credits: grants, the append-only credit ledger, burn rates and the AI price table.

Unit: every stored credit amount is an integer number of MICRO-credits (1 credit = 1,000,000), so
balances are exact integers. Prices (credits per unit, per 1,000 tokens) are decimals with nine
places; what an event costs is computed exactly in micro-credits and the fraction below one
micro-credit is carried per customer (`CreditAccount.carry`), so the integer micro-credits burned
over any run of events are the floor of their exact total cost (see billing.metering.credits).
"""

import pgtrigger
from django.db import models
from django.db.models import Q

from billing.metering.models import bumps_config_version

MICROS = 1_000_000


def credits_text(micros: int) -> str:
    """Micro-credits as a decimal string of credits with six places ("12.500000"): the API's form."""
    from decimal import Decimal

    return str((Decimal(micros) / MICROS).quantize(Decimal("0.000001")))


def credits_display(micros: int) -> str:
    """The same without trailing zeros, for pages: 1500000 -> "1.5"."""
    return credits_text(micros).rstrip("0").rstrip(".")


__all__ = ["AiPrice", "BurnRate", "CreditAccount", "CreditAlert", "CreditGrant", "CreditLedgerEntry",
           "CreditRequirement", "GrantSource", "LedgerKind", "MICROS"]  # fmt: skip


class GrantSource(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    PROMOTION = "promotion", "Promotion"
    TIER_ALLOWANCE = "tier_allowance", "Tier allowance"
    MANUAL = "manual", "Manual"


class CreditAccount(models.Model):
    """A customer's credit position, the row every balance change locks first (then the grants, in
    pk order). Invariant: `balance` == sum of its grants' `remaining` == sum of its ledger amounts;
    `carry` is the exact fractional micro-credit cost not yet burned (0 <= carry < 1); `overage`
    is the cost that found no usable grant (recorded on the ledger, never repaid silently)."""

    customer = models.OneToOneField(
        "memberships.Customer", on_delete=models.PROTECT, related_name="credit_account"
    )
    balance = models.BigIntegerField(default=0)
    carry = models.DecimalField(max_digits=20, decimal_places=12, default=0)
    overage = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "metering_credit_account"
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="metering_credit_account_balance_gte_0"),
            models.CheckConstraint(
                condition=Q(carry__gte=0) & Q(carry__lt=1), name="metering_credit_account_carry"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.balance} µcr"


class CreditGrant(models.Model):
    """Credits given to a customer (micro-credits). `remaining` only decreases (burn, expire) and
    never below zero; burning takes usable grants (effective, not expired, remaining > 0) by
    priority (lower first), then earliest expiry (none last), then creation. `reference` is the
    grant's idempotency key, unique per customer."""

    customer = models.ForeignKey(
        "memberships.Customer", on_delete=models.PROTECT, related_name="credit_grants"
    )
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    priority = models.IntegerField(default=100)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=GrantSource.choices, default=GrantSource.MANUAL)
    reference = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_credit_grant"
        constraints = [
            models.UniqueConstraint(fields=["customer", "reference"], name="metering_credit_grant_reference"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="metering_credit_grant_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                name="metering_credit_grant_remaining_range",
            ),
        ]
        # no index mentions `remaining` (nor a partial index's condition), and the table keeps 30%
        # of each page free: burning updates `remaining` of hundreds of grants per batch, and so
        # each update stays on its page without new index entries (HOT)
        indexes = [models.Index(fields=["expires_at"], name="metering_credit_grant_expires")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.reference}"

    @property
    def remaining_text(self) -> str:
        return credits_display(self.remaining)


class LedgerKind(models.TextChoices):
    GRANT = "grant", "Grant"
    BURN = "burn", "Burn"
    EXPIRE = "expire", "Expire"
    ADJUST = "adjust", "Adjust"
    INVOICE = "invoice", "Paid usage on an invoice"


@pgtrigger.register(
    pgtrigger.Protect(name="credit_ledger_no_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="credit_ledger_no_delete", operation=pgtrigger.Delete),
)
class CreditLedgerEntry(models.Model):
    """One movement of a customer's credits (append-only: the database refuses UPDATE and DELETE).
    `amount` is signed micro-credits (grant +, burn/expire -); `balance_after` is the account's
    balance after it; a burn that found too few credits records the unpaid rest in `overage`."""

    # indexed by (customer, -id) below; every index costs each of the hundreds of rows a batch writes
    customer = models.ForeignKey(
        "memberships.Customer", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=8, choices=LedgerKind.choices)
    amount = models.BigIntegerField()
    overage = models.BigIntegerField(default=0)
    grant = models.ForeignKey(
        CreditGrant, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    balance_after = models.BigIntegerField()
    reference = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_credit_ledger"
        ordering = ["-id"]
        indexes = [models.Index(fields=["customer", "-id"], name="metering_credit_ledger_cust")]
        constraints = [
            models.UniqueConstraint(
                fields=["grant"], condition=Q(kind="expire"), name="metering_credit_ledger_one_expire"
            ),
            models.UniqueConstraint(
                fields=["grant"], condition=Q(kind="grant"), name="metering_credit_ledger_one_grant"
            ),
            # an invoice takes from each grant once (reference `invoice:<id>`)
            models.UniqueConstraint(
                fields=["grant", "reference"],
                condition=Q(kind="invoice"),
                name="metering_credit_ledger_one_per_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.reference})"

    @property
    def amount_text(self) -> str:
        return credits_display(self.amount)

    @property
    def balance_after_text(self) -> str:
        return credits_display(self.balance_after)


@pgtrigger.register(
    pgtrigger.Protect(name="burn_rate_no_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="burn_rate_no_delete", operation=pgtrigger.Delete),
    bumps_config_version("burn_rate_bumps_config_version"),
)
class BurnRate(models.Model):
    """Credits one unit of a meter costs from `effective_from` on (history: rows are never edited;
    a change is a new row; an event is priced by the row effective at its own timestamp)."""

    meter = models.ForeignKey("metering.Meter", on_delete=models.PROTECT, related_name="burn_rates")
    credits_per_unit = models.DecimalField(max_digits=24, decimal_places=9)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_burn_rate"
        constraints = [
            models.UniqueConstraint(fields=["meter", "effective_from"], name="metering_burn_rate_once"),
            models.CheckConstraint(condition=Q(credits_per_unit__gte=0), name="metering_burn_rate_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}: {self.credits_per_unit}/unit from {self.effective_from:%Y-%m-%d}"


@pgtrigger.register(
    pgtrigger.Protect(name="ai_price_no_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="ai_price_no_delete", operation=pgtrigger.Delete),
    bumps_config_version("ai_price_bumps_config_version"),
)
class AiPrice(models.Model):
    """Credits per 1,000 input and per 1,000 output tokens of one provider's model from
    `effective_from` on (history: never edited; a change is a new row)."""

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    input_per_1k = models.DecimalField(max_digits=24, decimal_places=9)
    output_per_1k = models.DecimalField(max_digits=24, decimal_places=9)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_ai_price"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="metering_ai_price_once"
            ),
            models.CheckConstraint(
                condition=Q(input_per_1k__gte=0) & Q(output_per_1k__gte=0), name="metering_ai_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from:%Y-%m-%d}"


class CreditRequirement(models.Model):
    """The entitlement check denies `feature` with `insufficient_credits` while the customer's
    usable balance is below `minimum` micro-credits."""

    feature = models.OneToOneField(
        "tiers.Feature", on_delete=models.CASCADE, related_name="credit_requirement"
    )
    minimum = models.BigIntegerField(default=1)

    class Meta:
        db_table = "metering_credit_requirement"
        constraints = [models.CheckConstraint(condition=Q(minimum__gte=0), name="metering_credit_req_gte_0")]

    def __str__(self) -> str:
        return f"{self.feature_id} needs {self.minimum} µcr"


class CreditAlert(models.Model):
    """A tenant-wide low-balance threshold (micro-credits): a burn that takes a customer's balance
    from at or above it to below it publishes `credits.low` once (each crossing, not each burn)."""

    threshold = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_credit_alert"
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="metering_credit_alert_gt_0")
        ]

    def __str__(self) -> str:
        return f"below {self.threshold} µcr"


class AiUsage(models.Model):
    """AI usage per customer, provider, model and hour (kept by ingestion, in the events'
    transaction): events, tokens and the exact micro-credits they cost at their timestamps' prices
    (`unpriced_events` had no price). Cost reports read this, never raw events."""

    customer = models.TextField()
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200)
    hour = models.DateTimeField()
    events = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    credits = models.DecimalField(max_digits=38, decimal_places=9, default=0)  # micro-credits, exact
    unpriced_events = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metering_ai_usage"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "provider", "model", "hour"], name="metering_ai_usage_key"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="metering_ai_usage_hour")]

    def __str__(self) -> str:
        return f"{self.customer} {self.provider}/{self.model}@{self.hour:%Y-%m-%dT%H}"
