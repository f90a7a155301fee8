"""Writes for customers (memberships arrive with the payments issue)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from billing.memberships.models import Customer

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
) -> tuple[Customer, bool]:
    """Create the customer or update the fields given. Returns (customer, created).

    Safe under concurrency: a race on the unique external_id ends in one row.
    """
    with transaction.atomic():
        customer, created = Customer.objects.select_for_update().get_or_create(
            external_id=external_id,
            defaults={"email": email or "", "name": name or "", "metadata": metadata or {}, "user": user},
        )
        if not created:
            customer = customer_update(customer=customer, email=email, name=name, metadata=metadata)
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
