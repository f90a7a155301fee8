"""A coupon in words, for the coupons pages and the customer page: what it takes off, for how long,
and whether it can be redeemed now."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from billing.discounts.exceptions import CouponExhausted, CouponExpired, CouponInactive
from billing.discounts.models import Coupon, CouponDuration
from billing.discounts.services import coupon_check
from kernel.decimals import decimal_text
from kernel.money import format_amount
from kernel.templatetags.monetize import units


def coupon_off(coupon: Coupon) -> str:
    """ "20%", "12.5%", "$5.00", "₩5,000"."""
    if coupon.percent_off is not None:
        return f"{decimal_text(coupon.percent_off)}%"
    return format_amount(coupon.amount_off, coupon.currency)


def coupon_duration(coupon: Coupon) -> str:
    """In words: once, for 3 invoices, forever (a period is an invoice: a month on a monthly price)."""
    if coupon.duration == CouponDuration.REPEATING:
        return f"for {units(coupon.duration_in_periods, 'invoice')}"
    return "once" if coupon.duration == CouponDuration.ONCE else "forever"


def coupon_status(coupon: Coupon, now: dt.datetime | None = None) -> str:
    """active, deactivated, expired or used_up: the reason coupon_check gives first, in a word."""
    try:
        coupon_check(coupon=coupon, now=now or timezone.now())
    except CouponInactive:
        return "deactivated"
    except CouponExpired:
        return "expired"
    except CouponExhausted:
        return "used_up"
    return "active"
