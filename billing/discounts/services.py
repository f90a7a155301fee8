"""Coupon writes: create, deactivate, and take one redemption (exact under concurrency).

Redemptions themselves belong to the customer (billing.memberships): the services there call
`coupon_check` and `coupon_take` inside their own transaction, so a redemption row and the count it
took commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.discounts.exceptions import (
    CouponExhausted,
    CouponExists,
    CouponExpired,
    CouponInactive,
    CouponNotApplicable,
    DiscountsError,
)
from billing.discounts.models import CODE_PATTERN, Coupon, CouponDuration
from billing.discounts.selectors import NOT_USED_UP, code_normalize, redeemable_q
from billing.tiers.models import Tier

MAX_AMOUNT_OFF = 10**15  # minor units; far above any real discount, far below bigint
MAX_PERIODS = 1200  # a hundred years of monthly invoices
INT_MAX = 2**31 - 1  # PostgreSQL integer (max_redemptions)


def _percent_problem(percent_off) -> str | None:
    if not isinstance(percent_off, Decimal) or not percent_off.is_finite():
        return "The percent off (percent_off) is a decimal number."
    if not Decimal(0) < percent_off <= Decimal(100):
        return "The percent off (percent_off) is above 0 and at most 100."
    if percent_off != percent_off.quantize(Decimal("0.0001")):
        return "The percent off (percent_off) has at most 4 decimal places."
    return None


def _amount_problem(amount_off) -> str | None:
    if isinstance(amount_off, bool) or not isinstance(amount_off, int):
        return "The amount off (amount_off) is a whole number of minor units."
    if not 0 < amount_off <= MAX_AMOUNT_OFF:
        return f"The amount off (amount_off) is above 0 and at most {MAX_AMOUNT_OFF:,} minor units."
    return None


def coupon_terms_check(
    *,
    code: str,
    duration: str,
    name: str,
    percent_off: Decimal | None,
    amount_off: int | None,
    currency: str,
    duration_in_periods: int | None,
    max_redemptions: int | None,
) -> None:
    """Raise DiscountsError unless the terms make a coupon the database takes: every caller (the
    API, the console's form) is refused the same way, never with an IntegrityError. Its message is
    the first problem; details["field"] names that term, details["errors"] every term's problem."""
    errors: dict[str, str] = {}
    if not isinstance(code, str) or not re.fullmatch(CODE_PATTERN, code_normalize(code)):
        errors["code"] = "A code is 1-64 letters, digits, - and _, starting with a letter or digit."
    if not isinstance(name, str) or len(name) > 200 or "\x00" in name:
        errors["name"] = "A name is at most 200 characters of text."
    if duration not in CouponDuration.values:
        errors["duration"] = f"The duration is one of {', '.join(CouponDuration.values)}."
    if (percent_off is None) == (amount_off is None):
        errors["percent_off"] = "Give exactly one of percent_off or amount_off."
    elif percent_off is not None and (problem := _percent_problem(percent_off)):
        errors["percent_off"] = problem
    elif amount_off is not None:
        if problem := _amount_problem(amount_off):
            errors["amount_off"] = problem
        if not currency:
            errors["currency"] = "An amount off (amount_off) needs its currency, such as usd."
        elif not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
            errors["currency"] = "A currency is a three-letter ISO 4217 code, such as usd."
    if (duration == CouponDuration.REPEATING) != (duration_in_periods is not None):
        errors["duration_in_periods"] = (
            "The number of invoices (duration_in_periods) is given for, and only for, a repeating coupon."
        )
    elif duration_in_periods is not None and not 1 <= duration_in_periods <= MAX_PERIODS:
        errors["duration_in_periods"] = (
            f"A repeating coupon discounts 1 to {MAX_PERIODS:,} invoices (duration_in_periods)."
        )
    if max_redemptions is not None and not 1 <= max_redemptions <= INT_MAX:
        errors["max_redemptions"] = f"The redemption limit (max_redemptions) is 1 to {INT_MAX:,}."
    if errors:
        field, message = next(iter(errors.items()))
        details = {"field": field, "errors": errors}
        if field == "currency":
            details["currency"] = currency
        raise DiscountsError(message, details=details)


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
    """A new coupon; bad terms (coupon_terms_check), an unknown tier or a taken code change nothing."""
    coupon_terms_check(
        code=code,
        duration=duration,
        name=name,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        duration_in_periods=duration_in_periods,
        max_redemptions=max_redemptions,
    )
    tier_codes = sorted(set(tier_codes))
    tiers = list(Tier.objects.filter(code__in=tier_codes))
    if len(tiers) != len(tier_codes):
        unknown = sorted(set(tier_codes) - {t.code for t in tiers})
        raise CouponNotApplicable(
            f"No tier {', '.join(unknown)}.", details={"tiers": unknown, "field": "tiers"}
        )
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
            raise CouponExists(
                f"A coupon '{code}' exists.", details={"coupon": code, "field": "code"}
            ) from exc
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
    takeable = NOT_USED_UP if honor_begun else redeemable_q(now)
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
