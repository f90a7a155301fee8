"""A customer's discount: a coupon applied through the API or redeemed by a completed checkout.

Each redemption takes one count from the coupon (billing.discounts.services.coupon_take) in the
transaction that records it, so the count and the rows never disagree, and a coupon's last
redemption goes to exactly one of the customers racing for it.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from billing.discounts.exceptions import CouponUnusable
from billing.discounts.selectors import coupon_get
from billing.discounts.services import coupon_check, coupon_take
from billing.memberships.models import Checkout, CouponRedemption, Customer

logger = logging.getLogger(__name__)


def _live(customer: Customer) -> CouponRedemption | None:
    return (
        CouponRedemption.objects.select_for_update(of=("self",))
        .select_related("coupon")
        .filter(customer=customer, ended_at__isnull=True)
        .first()
    )


def customer_discount_apply(*, customer: Customer, coupon_code: str) -> tuple[CouponRedemption, bool]:
    """Give the customer the coupon `coupon_code` (ending the discount it had); (redemption, created).
    Applying the coupon it already holds returns that redemption and counts nothing. Raises
    unknown_coupon, coupon_inactive, coupon_expired or coupon_exhausted, changing nothing."""
    coupon = coupon_get(code=coupon_code)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()  # one change at a time
        live = _live(customer)
        if live is not None and live.coupon_id == coupon.pk:
            return live, False
        coupon_check(coupon=coupon)
        coupon_take(coupon=coupon)
        if live is not None:
            live.ended_at = timezone.now()
            live.save(update_fields=["ended_at"])
        redemption = CouponRedemption.objects.create(customer=customer, coupon=coupon)
    return redemption, True


def customer_discount_remove(*, customer: Customer) -> CouponRedemption | None:
    """End the customer's discount (what it took from the coupon stays counted); None: it had none."""
    with transaction.atomic():
        live = _live(customer)
        if live is not None:
            live.ended_at = timezone.now()
            live.save(update_fields=["ended_at"])
    return live


def checkout_coupon_redeem(*, checkout_id) -> CouponRedemption | None:
    """Redeem a checkout's coupon for its customer, once: when the checkout completes (in the
    completing transaction), or earlier when an engine of ours charges the first invoice before the
    completion is applied (so that invoice carries the discount); the second call finds the first
    redemption (the checkout row is locked meanwhile). The coupon was validated when the checkout
    began, so a coupon that expired or was deactivated since is still honored; one that others used
    up in between is not (logged; the checkout completes without a discount)."""
    with transaction.atomic():
        checkout = (
            Checkout.objects.select_for_update(of=("self",))
            .select_related("customer", "coupon")
            .filter(pk=checkout_id)
            .first()
        )
        if checkout is None or checkout.coupon_id is None:
            return None
        existing = CouponRedemption.objects.filter(checkout=checkout).first()
        if existing is not None:
            return existing
        live = _live(checkout.customer)
        try:
            coupon_take(coupon=checkout.coupon, honor_begun=True)
        except CouponUnusable:
            logger.warning(
                "checkout %s completed without its coupon %s: fully redeemed in the meantime",
                checkout.pk,
                checkout.coupon.code,
            )
            return None
        if live is not None:
            live.ended_at = timezone.now()
            live.save(update_fields=["ended_at"])
        return CouponRedemption.objects.create(
            customer=checkout.customer, coupon=checkout.coupon, checkout=checkout
        )
