"""Signals metering sends to the apps above it (it never imports them)."""

from django.dispatch import Signal

# usage or credits changed what a customer's entitlement snapshot says: `customers` is a set of
# external ids, or None for every customer. Entitlements drops those snapshots now and again on commit.
snapshots_stale = Signal()
