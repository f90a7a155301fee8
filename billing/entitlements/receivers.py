"""Keep entitlement snapshots in step with the catalog and memberships (both sent on commit)."""

from billing.entitlements import cache


def on_catalog_changed(sender, **kwargs) -> None:
    cache.invalidate_all()


def on_clock_changed(sender, **kwargs) -> None:
    cache.invalidate_all()


def on_membership_changed(sender, external_id: str, **kwargs) -> None:
    cache.invalidate(external_id)
