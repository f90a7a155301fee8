"""Reads of coupons. Codes are case-insensitive: stored and looked up in upper case."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.discounts.exceptions import CouponNotFound
from billing.discounts.models import Coupon


def code_normalize(code: str) -> str:
    return code.strip().upper() if isinstance(code, str) else ""


def coupon_list() -> QuerySet[Coupon]:
    return Coupon.objects.prefetch_related("tiers")


def coupon_get(*, code: str) -> Coupon:
    coupon = coupon_list().filter(code=code_normalize(code)).first() if code else None
    if coupon is None:
        raise CouponNotFound(f"No coupon '{code}'.", details={"coupon": code})
    return coupon
