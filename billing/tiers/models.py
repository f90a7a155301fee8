import pgtrigger
from django.db import models
from django.db.models import Q


class Tier(models.Model):
    """A plan a customer can be on (Community, Pro, a creator's channel tier …). Exactly one tier per
    tenant is the default (free) tier that customers without a live membership fall back to."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True, help_text="Listed on the pricing page and in the API.")
    is_default = models.BooleanField(default=False, help_text="The free tier customers fall back to.")
    sort_order = models.IntegerField(default=0)
    credit_allowance = models.BigIntegerField(
        null=True, blank=True,
        help_text="Credits granted each billing period, in micro-credits (1 credit = 1,000,000); they expire with the period.",
    )  # fmt: skip
    # a reference by name only: the creators app (billing.ledger.creators) sits above this one
    creator = models.ForeignKey(
        "creators.Creator", null=True, blank=True, on_delete=models.PROTECT, related_name="tiers",
        help_text="Set for a creator's channel tier.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="tiers_one_default_tier"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Interval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"
    ONE_TIME = "one_time", "One time"


class PricingModel(models.TextChoices):
    FLAT = "flat", "Flat"
    PER_SEAT = "per_seat", "Per seat"
    PER_UNIT = "per_unit", "Per unit (usage)"
    GRADUATED = "graduated", "Graduated"
    VOLUME = "volume", "Volume"
    PACKAGE = "package", "Package"


class PackageRounding(models.TextChoices):
    UP = "up", "Round partial packages up"
    DOWN = "down", "Bill whole packages only"


PRICE_TERMS = [
    "tier",
    "currency",
    "unit_amount",
    "unit_amount_decimal",
    "interval",
    "model",
    "tiers",
    "package_size",
    "package_rounding",
    "meter",
    "trial_days",
]


@pgtrigger.register(
    pgtrigger.ReadOnly(name="price_terms_immutable", fields=PRICE_TERMS),
    pgtrigger.Protect(name="price_no_delete", operation=pgtrigger.Delete),
)
class Price(models.Model):
    """What a tier costs, in integer minor units of `currency`. The terms are immutable (the
    database refuses an UPDATE of them and any DELETE): a change is a new price, the old one is
    deactivated. `tiers` is the table for graduated/volume pricing:
    `[{"up_to": 1000 | null, "unit_amount": 10, "unit_amount_decimal": "0.25"?, "flat_amount": 0}, …]`.
    A price that names a `meter` (by code) is a usage price, billed in arrears on that meter's usage
    for the period; `unit_amount_decimal` (fractional minor units) replaces `unit_amount` when set."""

    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="prices")
    code = models.SlugField(max_length=64, blank=True, help_text="Lookup key, unique among active prices.")
    currency = models.CharField(max_length=3)
    unit_amount = models.BigIntegerField(default=0)
    unit_amount_decimal = models.DecimalField(
        max_digits=24, decimal_places=12, null=True, blank=True,
        help_text="Fractional minor units per unit (e.g. 0.25 cents per token); replaces unit_amount.",
    )  # fmt: skip
    interval = models.CharField(max_length=8, choices=Interval.choices, default=Interval.MONTH)
    model = models.CharField(max_length=10, choices=PricingModel.choices, default=PricingModel.FLAT)
    tiers = models.JSONField(default=list, blank=True)
    package_size = models.PositiveIntegerField(null=True, blank=True)
    package_rounding = models.CharField(
        max_length=4, choices=PackageRounding.choices, default=PackageRounding.UP
    )
    meter = models.CharField(
        max_length=64, blank=True, help_text="A meter's code: a usage price, billed in arrears on its usage."
    )
    trial_days = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tier__sort_order", "unit_amount", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(active=True) & ~Q(code=""), name="tiers_price_code_unique_active"
            ),
            models.CheckConstraint(condition=Q(unit_amount__gte=0), name="tiers_price_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(unit_amount_decimal__isnull=True) | Q(unit_amount_decimal__gte=0),
                name="tiers_price_decimal_amount_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="tiers_price_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier.code} {self.unit_amount} {self.currency}/{self.interval}"


class FeatureKind(models.TextChoices):
    BOOLEAN = "boolean", "On/off"
    LIMIT = "limit", "Limit (counters, leases)"
    METERED = "metered", "Metered limit per period"
    RATE = "rate", "Rate limit"


class Feature(models.Model):
    """Something a tier grants: a switch, a limit, a metered allowance or a rate."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=FeatureKind.choices)
    unit = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class TierFeature(models.Model):
    """A feature's value in a tier: `enabled` for every kind; `limit_value` (null = unlimited) for
    limit/metered; `rate_limit` per `rate_window_seconds` for rate."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="tier_features")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="tier_features")
    enabled = models.BooleanField(default=True)
    limit_value = models.BigIntegerField(null=True, blank=True)
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_window_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "feature"], name="tiers_tierfeature_unique"),
            models.CheckConstraint(
                condition=Q(limit_value__isnull=True) | Q(limit_value__gte=0),
                name="tiers_tierfeature_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier.code}:{self.feature.code}"
