"""Writes for customers and memberships (a package: one module per sub-domain). The public
services are re-exported here, so callers import them from `billing.memberships.services`."""

from billing.memberships.services.checkout import (
    CHECKOUT_LIFETIME,
    checkout_complete,
    checkout_create,
    checkouts_expire,
)
from billing.memberships.services.customers import (
    customer_for_user,
    customer_patch,
    customer_update,
    customer_upsert,
)
from billing.memberships.services.lifecycle import (
    membership_cancel,
    membership_change,
    membership_pause,
    membership_portal_url,
    membership_set_tier,
)
from billing.memberships.services.payments import payment_record
from billing.memberships.services.provider_sync import membership_sync_from_provider

__all__ = [
    "CHECKOUT_LIFETIME",
    "checkout_complete",
    "checkout_create",
    "checkouts_expire",
    "customer_for_user",
    "customer_patch",
    "customer_update",
    "customer_upsert",
    "membership_cancel",
    "membership_change",
    "membership_pause",
    "membership_portal_url",
    "membership_set_tier",
    "membership_sync_from_provider",
    "payment_record",
]
