"""A coupon in words, wherever a person reads it: the staff's coupons and customer pages and the
customer's own billing page."""

from __future__ import annotations

from billing.discounts.models import Coupon, CouponDuration
from kernel.decimals import decimal_text
from kernel.money import format_amount
from kernel.templatetags.monetize import units


def coupon_off(coupon: Coupon) -> str:
    """ "20%", "12.5%", "$5.00", "₩5,000"."""
    if coupon.percent_off is not None:
        return f"{decimal_text(coupon.percent_off)}%"
    return format_amount(coupon.amount_off, coupon.currency)


def coupon_in_words(coupon: Coupon) -> Coupon:
    """The coupon, with `off` and `duration_words` set for a template to print."""
    coupon.off, coupon.duration_words = coupon_off(coupon), coupon_duration(coupon)
    return coupon


def coupon_duration(coupon: Coupon) -> str:
    """In words: once, for 3 invoices, forever (a period is an invoice: a month on a monthly price)."""
    if coupon.duration == CouponDuration.REPEATING:
        return f"for {units(coupon.duration_in_periods, 'invoice')}"
    return "once" if coupon.duration == CouponDuration.ONCE else "forever"
