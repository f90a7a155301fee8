"""Coupon writes: create, deactivate, and take one redemption (exact under concurrency).

Redemptions themselves belong to the customer (billing.memberships): the services there call
`coupon_check` and `coupon_take` inside their own transaction, so a redemption row and the count it
took commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.discounts.exceptions import (
    CouponExhausted,
    CouponExists,
    CouponExpired,
    CouponInactive,
    CouponNotApplicable,
    DiscountsError,
)
from billing.discounts.models import Coupon, CouponDuration
from billing.discounts.selectors import code_normalize
from billing.tiers.models import Tier


def coupon_create(
    *,
    code: str,
    duration: str,
    name: str = "",
    percent_off: Decimal | None = None,
    amount_off: int | None = None,
    currency: str = "",
    duration_in_periods: int | None = None,
    max_redemptions: int | None = None,
    expires_at: dt.datetime | None = None,
    tier_codes: Iterable[str] = (),
) -> Coupon:
    """A new coupon; an unknown tier or a taken code changes nothing."""
    if (percent_off is None) == (amount_off is None):
        raise DiscountsError("Give exactly one of percent_off or amount_off.")
    if amount_off is not None and not currency:
        raise DiscountsError("amount_off needs a currency.", details={"currency": currency})
    if (duration == CouponDuration.REPEATING) != (duration_in_periods is not None):
        raise DiscountsError("duration_in_periods is given for, and only for, a repeating coupon.")
    tier_codes = sorted(set(tier_codes))
    tiers = list(Tier.objects.filter(code__in=tier_codes))
    if len(tiers) != len(tier_codes):
        unknown = sorted(set(tier_codes) - {t.code for t in tiers})
        raise CouponNotApplicable(f"No tier {', '.join(unknown)}.", details={"tiers": unknown})
    code = code_normalize(code)
    try:
        with transaction.atomic():
            coupon = Coupon.objects.create(
                code=code,
                name=name,
                percent_off=percent_off,
                amount_off=amount_off,
                currency=currency.lower() if amount_off is not None else "",
                duration=duration,
                duration_in_periods=duration_in_periods,
                max_redemptions=max_redemptions,
                expires_at=expires_at,
            )
            coupon.tiers.set(tiers)
    except IntegrityError as exc:
        if Coupon.objects.filter(code=code).exists():
            raise CouponExists(f"A coupon '{code}' exists.", details={"coupon": code}) from exc
        raise
    return coupon


def coupon_deactivate(*, coupon: Coupon) -> Coupon:
    """No new redemptions; the customers who hold it keep their discount for its duration."""
    Coupon.objects.filter(pk=coupon.pk, active=True).update(active=False)
    coupon.refresh_from_db(fields=["active"])
    return coupon


def coupon_check(
    *,
    coupon: Coupon,
    tier: Tier | None = None,
    currency: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Raise unless `coupon` may be redeemed now (for a purchase of `tier` in `currency` when given)."""
    now = now or timezone.now()
    details = {"coupon": coupon.code}
    if not coupon.active:
        raise CouponInactive(f"Coupon '{coupon.code}' is no longer offered.", details=details)
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise CouponExpired(
            f"Coupon '{coupon.code}' expired at {coupon.expires_at:%Y-%m-%d %H:%M} UTC.",
            details={**details, "expires_at": coupon.expires_at.isoformat()},
        )
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponExhausted(f"Coupon '{coupon.code}' has been fully redeemed.", details=details)
    if tier is not None:
        tier_ids = {t.pk for t in coupon.tiers.all()}
        if tier_ids and tier.pk not in tier_ids:
            raise CouponNotApplicable(
                f"Coupon '{coupon.code}' is not for tier '{tier.code}'.",
                details={**details, "tier": tier.code},
            )
    if currency is not None and coupon.amount_off is not None and coupon.currency != currency.lower():
        raise CouponNotApplicable(
            f"Coupon '{coupon.code}' takes {coupon.currency.upper()} off; this is in {currency.upper()}.",
            details={**details, "currency": currency.lower()},
        )


def coupon_take(*, coupon: Coupon, honor_begun: bool = False, now: dt.datetime | None = None) -> Coupon:
    """Count one redemption, or raise (coupon_exhausted, coupon_expired, coupon_inactive). One
    conditional UPDATE: concurrent takers queue on the row and each re-reads the count, so a coupon
    with one redemption left gives it to exactly one of them. Call it inside the transaction that
    records the redemption. `honor_begun`: a checkout that validated the coupon when it began keeps
    it though the coupon has since expired or been deactivated (only the count is a hard limit)."""
    now = now or timezone.now()
    takeable = Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions"))
    if not honor_begun:
        takeable &= Q(active=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if Coupon.objects.filter(takeable, pk=coupon.pk).update(times_redeemed=F("times_redeemed") + 1):
        coupon.refresh_from_db(fields=["times_redeemed"])
        return coupon
    coupon.refresh_from_db()
    if honor_begun:
        raise CouponExhausted(
            f"Coupon '{coupon.code}' has been fully redeemed.", details={"coupon": coupon.code}
        )
    coupon_check(coupon=coupon, now=now)  # raises the reason
    raise CouponExhausted(f"Coupon '{coupon.code}' has been fully redeemed.", details={"coupon": coupon.code})
