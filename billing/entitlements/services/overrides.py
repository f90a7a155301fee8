"""Per-customer overrides of a feature (a limit, on or off), effective at once."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from billing.entitlements.exceptions import (
    UnknownFeature,
)
from billing.entitlements.models import EntitlementOverride
from billing.entitlements.services.usage import invalidate_on_commit
from billing.memberships.models import Customer
from billing.tiers.models import Feature

logger = logging.getLogger("billing.entitlements.services")


# --- overrides ----------------------------------------------------------------------------------


def override_set(
    *,
    customer: Customer,
    feature: str,
    enabled: bool | None = None,
    limit_value: int | None = None,
    unlimited: bool = False,
    rate_limit: int | None = None,
    rate_window_seconds: int | None = None,
    expires_at: dt.datetime | None = None,
    note: str = "",
) -> EntitlementOverride:
    """Grant/deny a feature or change its limit or rate for one customer (replaces any previous)."""
    feature_row = Feature.objects.filter(code=feature).first()
    if feature_row is None:
        raise UnknownFeature(f"No feature '{feature}' in the catalog.", details={"feature": feature})
    with transaction.atomic():
        override, _ = EntitlementOverride.objects.update_or_create(
            customer=customer,
            feature=feature_row,
            defaults={
                "enabled": enabled,
                "limit_value": limit_value,
                "unlimited": unlimited,
                "rate_limit": rate_limit,
                "rate_window_seconds": rate_window_seconds,
                "expires_at": expires_at,
                "note": note,
            },
        )
        invalidate_on_commit(customer.external_id)
    return override


def override_delete(*, customer: Customer, feature: str) -> bool:
    with transaction.atomic():
        deleted, _ = EntitlementOverride.objects.filter(customer=customer, feature__code=feature).delete()
        invalidate_on_commit(customer.external_id)
    return bool(deleted)
