"""Customer writes: upsert, update, patch, the customer of a signed-up user."""

from __future__ import annotations

from django.db import transaction

from billing.memberships.models import (
    Customer,
)
from billing.memberships.services.lifecycle import membership_set_tier
from billing.tiers.selectors import tier_get


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
    country: str | None = None,
    tax_exempt: bool | None = None,
) -> tuple[Customer, bool]:
    """Create the customer or update the fields given; with `tier_code`, also put it on that tier
    (membership_set_tier). Returns (customer, created). All or nothing; safe under concurrency: a
    race on the unique external_id ends in one row.
    """
    with transaction.atomic():
        tier = tier_get(code=tier_code) if tier_code else None  # an unknown tier changes nothing
        customer, created = Customer.objects.select_for_update().get_or_create(
            external_id=external_id,
            defaults={"email": email or "", "name": name or "", "metadata": metadata or {}, "user": user,
                      "country": (country or "").upper(), "tax_exempt": bool(tax_exempt)},
        )  # fmt: skip
        if not created:
            customer = customer_update(
                customer=customer,
                email=email,
                name=name,
                metadata=metadata,
                country=country,
                tax_exempt=tax_exempt,
            )
        if tier is not None:
            membership_set_tier(customer=customer, tier=tier)
    return customer, created


def customer_update(
    *,
    customer: Customer,
    email: str | None = None,
    name: str | None = None,
    metadata: dict | None = None,
    country: str | None = None,
    tax_exempt: bool | None = None,
) -> Customer:
    """Change the fields given (None: leave as is). `country` (ISO alpha-2, "" clears it) and
    `tax_exempt` decide the tax on the customer's next invoices."""
    changed = []
    if country is not None and country.upper() != customer.country:
        customer.country, changed = country.upper(), [*changed, "country"]
    if tax_exempt is not None and tax_exempt != customer.tax_exempt:
        customer.tax_exempt, changed = tax_exempt, [*changed, "tax_exempt"]
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


def customer_patch(*, external_id: str, **changes) -> Customer:
    """Update a customer found by external_id (locked for the change)."""
    from billing.memberships.selectors import customer_get_for_update

    with transaction.atomic():
        return customer_update(customer=customer_get_for_update(external_id=external_id), **changes)


def customer_for_user(*, user) -> Customer:
    """The customer record of a person who signed up on the tenant's site (created at sign-up, else
    the first time they need one). An existing record is returned as it is: the pages that call
    this on every visit must not write (the integrator may have set another billing email)."""
    from billing.memberships.selectors import customer_of_user

    customer = customer_of_user(user=user)
    if customer is not None:
        return customer
    customer, _ = customer_upsert(external_id=f"user_{user.pk}", email=user.email, user=user)
    return customer
