"""Writes for customers (memberships arrive with the payments issue)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.memberships.models import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Customer,
    Membership,
    MembershipStatus,
)
from billing.memberships.signals import membership_changed
from billing.tiers.selectors import tier_get

_UNSET: Any = object()


def _merge_metadata(current: dict, changes: dict) -> dict:
    """Stripe-style metadata update: keys are merged; a key set to null is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def customer_upsert(
    *,
    external_id: str,
    email: str | None = None,
    name: str | None = None,
    metadata: dict | None = None,
    user=None,
    tier_code: str | None = None,
) -> tuple[Customer, bool]:
    """Create the customer or update the fields given; with `tier_code`, also put it on that tier
    (membership_set_tier). Returns (customer, created). All or nothing; safe under concurrency: a
    race on the unique external_id ends in one row.
    """
    with transaction.atomic():
        tier = tier_get(code=tier_code) if tier_code else None  # an unknown tier changes nothing
        customer, created = Customer.objects.select_for_update().get_or_create(
            external_id=external_id,
            defaults={"email": email or "", "name": name or "", "metadata": metadata or {}, "user": user},
        )
        if not created:
            customer = customer_update(customer=customer, email=email, name=name, metadata=metadata)
        if tier is not None:
            membership_set_tier(customer=customer, tier=tier)
    return customer, created


def customer_update(
    *, customer: Customer, email: str | None = None, name: str | None = None, metadata: dict | None = None
) -> Customer:
    changed = []
    if email is not None and email != customer.email:
        customer.email, changed = email, [*changed, "email"]
    if name is not None and name != customer.name:
        customer.name, changed = name, [*changed, "name"]
    if metadata:
        merged = _merge_metadata(customer.metadata, metadata)
        if merged != customer.metadata:
            customer.metadata, changed = merged, [*changed, "metadata"]
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return customer


def customer_for_user(*, user) -> Customer:
    """The customer record of a person who signed up on the tenant's site (created at sign-up)."""
    customer, _ = customer_upsert(external_id=f"user_{user.pk}", email=user.email, user=user)
    return customer


def membership_set_tier(*, customer: Customer, tier) -> Membership | None:
    """Put the customer on `tier` now, without a payment (staff grant, API, enterprise deal).

    The current live membership ends; the default tier needs no membership (returns None).
    Provider-driven changes (checkout, upgrades, dunning) arrive with the payments issue.
    """
    now = timezone.now()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        live = (
            Membership.objects.select_for_update().filter(customer=customer, status__in=LIVE_STATUSES).first()
        )
        if live is not None and live.tier_id == tier.pk and live.status in ENTITLED_STATUSES:
            return live
        if live is not None:
            live.status, live.ended_at = MembershipStatus.CANCELED, now
            live.save(update_fields=["status", "ended_at", "updated_at"])
        membership = None
        if not tier.is_default:
            membership = Membership.objects.create(
                customer=customer, tier=tier, status=MembershipStatus.ACTIVE, started_at=now
            )
        _notify_changed(customer.external_id)
    return membership


def _notify_changed(external_id: str) -> None:
    """Tell listeners now (readers inside this transaction see the change) and again on commit
    (readers that rebuilt a cache from pre-commit data in between are invalidated)."""
    membership_changed.send(sender=Membership, external_id=external_id)
    transaction.on_commit(lambda: membership_changed.send(sender=Membership, external_id=external_id))
