"""Whether a coupon can be redeemed now, in a word, for the coupons pages (its terms in words are
billing.discounts.display's)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from billing.discounts.exceptions import CouponExhausted, CouponExpired, CouponInactive
from billing.discounts.models import Coupon
from billing.discounts.services import coupon_check


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
