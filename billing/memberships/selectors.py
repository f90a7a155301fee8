from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from billing.memberships.exceptions import CustomerNotFound
from billing.memberships.models import ENTITLED_STATUSES, Customer, Membership
from billing.tiers.models import Tier


def customer_get(*, external_id: str) -> Customer:
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(
            f"No customer with external_id '{external_id}'.", details={"customer": external_id}
        )
    return customer


def customer_get_for_update(*, external_id: str) -> Customer:
    """Lock the customer row for the rest of the caller's transaction."""
    customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(
            f"No customer with external_id '{external_id}'.", details={"customer": external_id}
        )
    return customer


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


def customer_tier(*, customer: Customer) -> Tier | None:
    """The tier of the customer's entitled membership, else the tenant's default tier."""
    membership = (
        Membership.objects.filter(customer=customer, status__in=ENTITLED_STATUSES)
        .select_related("tier")
        .first()
    )
    if membership is not None:
        return membership.tier
    return Tier.objects.filter(is_default=True).first()


def membership_current(*, customer: Customer) -> Membership | None:
    """The customer's live membership (at most one), else the most recent one."""
    from billing.memberships.models import LIVE_STATUSES

    live = (
        Membership.objects.filter(customer=customer, status__in=LIVE_STATUSES)
        .select_related("tier", "price")
        .first()
    )
    return (
        live
        or Membership.objects.filter(customer=customer)
        .select_related("tier", "price")
        .order_by("-id")
        .first()
    )


def membership_get(*, membership_id: int) -> Membership:
    from billing.memberships.exceptions import MembershipNotFound

    membership = Membership.objects.filter(pk=membership_id).select_related("customer", "tier").first()
    if membership is None:
        raise MembershipNotFound("No such membership.", details={"id": membership_id})
    return membership
