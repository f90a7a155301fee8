"""Coupons: a percentage or a fixed amount off, for one invoice, n invoices or forever.

Why an app of its own, just above the catalog (`billing.tiers`) and below the providers: a coupon is
catalog data that names tiers (its restriction) and nothing else, and checkout
(`billing.memberships`, below invoicing) must validate and redeem it, so it has to sit below
memberships; the catalog itself stays about tiers, prices and features. What a customer holds (its
redemption) lives with the customer in `billing.memberships`; what an invoice took from it, with the
invoice in `billing.invoicing`. Dependencies point down only: invoicing → memberships → discounts →
tiers.
"""

import pgtrigger
from django.db import models
from django.db.models import F, Q

CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,63}$"


class CouponDuration(models.TextChoices):
    ONCE = "once", "One invoice"
    REPEATING = "repeating", "A number of invoices"
    FOREVER = "forever", "Every invoice"


COUPON_TERMS = ["code", "percent_off", "amount_off", "currency", "duration", "duration_in_periods"]


@pgtrigger.register(
    pgtrigger.ReadOnly(name="coupon_terms_immutable", fields=COUPON_TERMS),
    pgtrigger.Protect(name="coupon_no_delete", operation=pgtrigger.Delete),
)
class Coupon(models.Model):
    """`percent_off` (0 < p ≤ 100) or `amount_off` in minor units of `currency`, never both; its terms
    are immutable and it is never deleted, only deactivated (redemptions keep running).
    `times_redeemed` never passes `max_redemptions` (a conditional UPDATE takes a redemption; the
    database checks the bound too). No tiers: it applies to every line; else only to those tiers'."""

    code = models.CharField(max_length=64, unique=True, help_text="Upper case; what customers type.")
    name = models.CharField(max_length=200, blank=True)
    percent_off = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    amount_off = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    duration = models.CharField(max_length=10, choices=CouponDuration.choices)
    duration_in_periods = models.PositiveIntegerField(
        null=True, blank=True, help_text="For `repeating`: how many invoices it discounts."
    )
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Redeemable until then.")
    tiers = models.ManyToManyField("tiers.Tier", blank=True, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=CODE_PATTERN), name="discounts_coupon_code"),
            models.CheckConstraint(
                condition=(
                    Q(percent_off__isnull=False, amount_off__isnull=True, currency="")
                    | Q(percent_off__isnull=True, amount_off__isnull=False, currency__regex=r"^[a-z]{3}$")
                ),
                name="discounts_coupon_percent_xor_amount",
            ),
            models.CheckConstraint(
                condition=Q(percent_off__isnull=True) | Q(percent_off__gt=0, percent_off__lte=100),
                name="discounts_coupon_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(amount_off__isnull=True) | Q(amount_off__gt=0),
                name="discounts_coupon_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(duration="repeating", duration_in_periods__gte=1)
                | (~Q(duration="repeating") & Q(duration_in_periods__isnull=True)),
                name="discounts_coupon_duration_periods",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(max_redemptions__gte=1, times_redeemed__lte=F("max_redemptions")),
                name="discounts_coupon_redemptions_bounded",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def periods(self) -> int | None:
        """How many invoices a redemption discounts (None: every invoice)."""
        if self.duration == CouponDuration.ONCE:
            return 1
        if self.duration == CouponDuration.REPEATING:
            return self.duration_in_periods
        return None
