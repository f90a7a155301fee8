"""Reads of coupons. Codes are case-insensitive: stored and looked up in upper case."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q, QuerySet

from billing.discounts.exceptions import CouponNotFound
from billing.discounts.models import Coupon


def code_normalize(code: str) -> str:
    return code.strip().upper() if isinstance(code, str) else ""


def coupon_list() -> QuerySet[Coupon]:
    return Coupon.objects.prefetch_related("tiers")


NOT_USED_UP = Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions"))


def redeemable_q(now: dt.datetime) -> Q:
    """Coupons that may be redeemed at `now`: active, not expired, not used up (what coupon_check
    accepts before a tier or currency is known)."""
    return NOT_USED_UP & Q(active=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def coupon_get(*, code: str) -> Coupon:
    coupon = coupon_list().filter(code=code_normalize(code)).first() if code else None
    if coupon is None:
        raise CouponNotFound(f"No coupon '{code}'.", details={"coupon": code})
    return coupon
