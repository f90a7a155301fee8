"""Writes for customers and memberships (a package: one module per sub-domain). The public
services are re-exported here, so callers import them from `billing.memberships.services`."""

from billing.memberships.services._common import (
    membership_cancel_replaced,
    memberships_batch,
    memberships_batch_forget,
)
from billing.memberships.services.checkout import (
    CHECKOUT_LIFETIME,
    MAX_SEATS,
    checkout_complete,
    checkout_create,
    checkout_mark_completed,
    checkouts_expire,
)
from billing.memberships.services.customers import (
    customer_for_user,
    customer_patch,
    customer_update,
    customer_upsert,
)
from billing.memberships.services.discounts import (
    checkout_coupon_redeem,
    customer_discount_apply,
    customer_discount_remove,
)
from billing.memberships.services.lifecycle import (
    membership_cancel,
    membership_change,
    membership_pause,
    membership_portal_url,
    membership_set_tier,
    membership_uncancel,
)
from billing.memberships.services.payments import payment_record
from billing.memberships.services.provider_sync import membership_sync_from_provider

__all__ = [
    "CHECKOUT_LIFETIME",
    "MAX_SEATS",
    "checkout_complete",
    "checkout_coupon_redeem",
    "checkout_create",
    "checkout_mark_completed",
    "checkouts_expire",
    "customer_discount_apply",
    "customer_discount_remove",
    "customer_for_user",
    "customer_patch",
    "customer_update",
    "customer_upsert",
    "membership_cancel",
    "membership_cancel_replaced",
    "membership_change",
    "membership_pause",
    "membership_portal_url",
    "membership_set_tier",
    "membership_sync_from_provider",
    "membership_uncancel",
    "memberships_batch",
    "memberships_batch_forget",
    "payment_record",
]
