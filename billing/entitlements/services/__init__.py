"""Entitlements: the check (`check`), counters and leases (`usage`), overrides and customer API keys.

The check reads a cached snapshot (selectors.entitlement_snapshot) and, for rate features, runs
one GCRA script in Redis. Counters and leases are enforced in PostgreSQL with conditional writes
under a row lock, so a limit of N grants exactly N under any concurrency; every change
invalidates the customer's snapshot after commit.
"""

from billing.entitlements.services.check import (
    Decision,
    Reason,
    decide,
    entitlement_check,
)
from billing.entitlements.services.keys import (
    Verification,
    customer_key_create,
    customer_key_hash,
    customer_key_revoke,
    customer_key_rotate,
    customer_key_verify,
)
from billing.entitlements.services.overrides import (
    override_delete,
    override_set,
)
from billing.entitlements.services.usage import (
    Usage,
    counter_change,
    invalidate_on_commit,
    lease_acquire,
    lease_release,
    lease_renew,
    leases_purge,
)

__all__ = [
    "Decision",
    "Reason",
    "Usage",
    "Verification",
    "counter_change",
    "customer_key_create",
    "customer_key_hash",
    "customer_key_revoke",
    "customer_key_rotate",
    "customer_key_verify",
    "decide",
    "entitlement_check",
    "invalidate_on_commit",
    "lease_acquire",
    "lease_release",
    "lease_renew",
    "leases_purge",
    "override_delete",
    "override_set",
]
