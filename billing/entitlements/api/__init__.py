"""Entitlements API: checks, snapshots, counters, leases, overrides, customer API keys.

The two hot paths (`/entitlements/check`, `/keys/verify`) parse their small bodies by hand
(`_common`, validated explicitly and in tests) instead of through DRF serializers.
"""

from billing.entitlements.api.check import EntitlementCheckView, EntitlementSnapshotView, snapshot_as_dict
from billing.entitlements.api.counters import CounterView, LeaseAcquireView, LeaseDetailView, LeaseRenewView
from billing.entitlements.api.keys import (
    CustomerKeyDetailView,
    CustomerKeyListCreateView,
    CustomerKeyRotateView,
    KeyVerifyView,
)
from billing.entitlements.api.overrides import OverrideView

__all__ = [
    "CounterView", "CustomerKeyDetailView", "CustomerKeyListCreateView", "CustomerKeyRotateView",
    "EntitlementCheckView", "EntitlementSnapshotView", "KeyVerifyView", "LeaseAcquireView", "LeaseDetailView",
    "LeaseRenewView", "OverrideView", "snapshot_as_dict",
]  # fmt: skip
