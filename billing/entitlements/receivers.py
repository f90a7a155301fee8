"""Keep entitlement snapshots in step with the catalog and memberships (both sent on commit)."""

from django.db import transaction

from billing.entitlements import cache


def on_catalog_changed(sender, **kwargs) -> None:
    cache.invalidate_all()


def on_clock_changed(sender, **kwargs) -> None:
    cache.invalidate_all()


def on_membership_changed(sender, external_id: str | None, external_ids=None, **kwargs) -> None:
    cache.invalidate_many(external_ids if external_ids is not None else [external_id])


def on_snapshots_stale(sender, customers=None, **kwargs) -> None:
    """Usage or credits changed: drop the snapshots now, and again once the change is visible (a
    check between the two would otherwise cache the old answer)."""
    if customers is None:
        cache.invalidate_all()
        transaction.on_commit(cache.invalidate_all)
        return
    cache.invalidate_many(customers)
    transaction.on_commit(lambda: cache.invalidate_many(customers))
