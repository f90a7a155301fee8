from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.memberships.exceptions import CustomerNotFound
from billing.memberships.models import (
    ENTITLED_STATUSES,
    CouponRedemption,
    Customer,
    Membership,
    MembershipStatus,
)
from billing.tiers.models import Tier


def customer_get(*, external_id: str) -> Customer:
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(
            f"No customer with external_id '{external_id}'.", details={"customer": external_id}
        )
    return customer


def customer_of_user(*, user) -> Customer | None:
    """The customer record of a person who signed up on the tenant's site, if they have one (read
    only: a page a staff member merely looks at must not make them a customer)."""
    return Customer.objects.filter(external_id=f"user_{user.pk}").first()


def customer_get_for_update(*, external_id: str) -> Customer:
    """Lock the customer row for the rest of the caller's transaction."""
    customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(
            f"No customer with external_id '{external_id}'.", details={"customer": external_id}
        )
    return customer


def customer_discount(*, customer: Customer) -> CouponRedemption | None:
    """The customer's live discount (its coupon prefetched), if it has one."""
    return (
        CouponRedemption.objects.filter(customer=customer, ended_at__isnull=True)
        .select_related("coupon", "checkout")
        .prefetch_related("coupon__tiers")
        .first()
    )


def customer_list(
    *,
    email: str | None = None,
    search: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Customer]:
    qs = Customer.objects.all()
    if email:
        qs = qs.filter(email__iexact=email)
    if search:
        qs = qs.filter(
            Q(external_id__icontains=search) | Q(email__icontains=search) | Q(name__icontains=search)
        )
    if created_after:
        qs = qs.filter(created_at__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    return qs


def clock_offset() -> dt.timedelta:
    """How far the tenant's billing clock is ahead of real time: zero, unless the sandbox clock was
    advanced (then membership times from the sandbox's events are in its future, and grace periods
    must be judged on the same clock)."""
    from billing.providers.models import SandboxClock

    clock = SandboxClock.objects.first()
    return dt.timedelta(seconds=clock.offset_seconds) if clock else dt.timedelta(0)


def entitled_membership(*, customer: Customer) -> Membership | None:
    """The plan membership whose tier the customer has now: trialing or active, or past due within
    the dunning grace period (DUNNING_GRACE_DAYS from the failed renewal). Only the platform's own
    tiers make a plan; a creator's channel membership beside it grants no entitlements here."""
    membership = (
        Membership.objects.filter(customer=customer, status__in=ENTITLED_STATUSES, creator__isnull=True)
        .select_related("tier")
        .first()
    )
    if (
        membership is not None
        and membership.status == MembershipStatus.PAST_DUE
        and membership.past_due_since
    ):
        if (
            membership.past_due_since + dt.timedelta(days=settings.DUNNING_GRACE_DAYS)
            <= timezone.now() + clock_offset()
        ):
            return None
    return membership


def grace_ends_at(membership: Membership | None) -> dt.datetime | None:
    if membership is None or membership.status != MembershipStatus.PAST_DUE or not membership.past_due_since:
        return None
    # on the real clock, for cache lifetimes
    return membership.past_due_since + dt.timedelta(days=settings.DUNNING_GRACE_DAYS) - clock_offset()


def customer_tier(*, customer: Customer) -> Tier | None:
    """The tier of the customer's entitled membership, else the tenant's default tier."""
    membership = entitled_membership(customer=customer)
    if membership is not None:
        return membership.tier
    return Tier.objects.filter(is_default=True).first()


def membership_current(*, customer: Customer, creator_handle: str | None = None) -> Membership | None:
    """The customer's live plan membership (at most one), else the most recent plan membership;
    with `creator_handle`, the same for that creator's channel tiers instead (a customer holds one
    live membership per owner)."""
    from billing.memberships.models import LIVE_STATUSES

    owner = {"creator__isnull": True} if creator_handle is None else {"creator__handle": creator_handle}
    live = (
        Membership.objects.filter(customer=customer, status__in=LIVE_STATUSES, **owner)
        .select_related("tier", "price", "creator")
        .first()
    )
    return (
        live
        or Membership.objects.filter(customer=customer, **owner)
        .select_related("tier", "price", "creator")
        .order_by("-id")
        .first()
    )


def membership_get(*, membership_id: int) -> Membership:
    from billing.memberships.exceptions import MembershipNotFound

    membership = Membership.objects.filter(pk=membership_id).select_related("customer", "tier").first()
    if membership is None:
        raise MembershipNotFound("No such membership.", details={"id": membership_id})
    return membership
