"""Counters and leases, enforced in PostgreSQL with conditional writes under a row lock, so a limit
of N grants exactly N under any concurrency; every change invalidates the customer's snapshot after commit."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.entitlements import cache
from billing.entitlements.exceptions import (
    CounterUnderflow,
    LeaseExpired,
    LeaseNotFound,
    LimitReached,
    NotInTier,
    UnknownFeature,
    WrongFeatureKind,
)
from billing.entitlements.models import Lease, UsageCounter
from billing.entitlements.selectors import snapshot_build
from billing.memberships.models import Customer
from billing.tiers.models import Feature, FeatureKind

logger = logging.getLogger("billing.entitlements.services")


def invalidate_on_commit(external_id: str) -> None:
    """Drop the snapshot now (reads later in this transaction rebuild it) and again on commit (a
    concurrent reader may have rebuilt it from pre-commit rows in between)."""
    cache.invalidate(external_id)
    transaction.on_commit(lambda: cache.invalidate(external_id))


# --- counters -----------------------------------------------------------------------------------


def _feature_for_usage(code: str, kinds: tuple[str, ...]) -> Feature:
    feature = Feature.objects.filter(code=code).first()
    if feature is None:
        raise UnknownFeature(f"No feature '{code}' in the catalog.", details={"feature": code})
    if feature.kind not in kinds:
        raise WrongFeatureKind(
            f"'{code}' is a {feature.kind} feature; this takes {' or '.join(kinds)} features.",
            details={"feature": code, "kind": feature.kind},
        )
    return feature


def _locked_counter(customer: Customer, feature: Feature) -> UsageCounter:
    UsageCounter.objects.bulk_create(
        [UsageCounter(customer=customer, feature=feature)], ignore_conflicts=True
    )
    return UsageCounter.objects.select_for_update().get(customer=customer, feature=feature)


def _effective(customer: Customer, feature: Feature) -> dict:
    return snapshot_build(customer=customer)["features"][feature.code]


@dataclass
class Usage:
    feature: str
    used: int
    limit: int | None

    def as_dict(self) -> dict:
        remaining = None if self.limit is None else max(0, self.limit - self.used)
        return {"feature": self.feature, "used": self.used, "limit": self.limit, "remaining": remaining}


def counter_change(
    *, customer: Customer, feature: str, delta: int | None = None, value: int | None = None
) -> Usage:
    """Move a limit counter by `delta`, or set it to `value`.

    A positive delta that would pass the limit is refused (LimitReached) and changes nothing; a
    delta below zero is refused (CounterUnderflow). `value` records a fact (the integrator recounted)
    and is accepted even above the limit: checks then deny until usage drops.
    """
    feature_row = _feature_for_usage(feature, (FeatureKind.LIMIT, FeatureKind.METERED))
    if feature_row.kind == FeatureKind.METERED and feature_row.meters.filter(active=True).exists():
        raise WrongFeatureKind(
            f"'{feature}' is measured by a meter: send usage events (POST /api/v1/events), not counter changes.",
            code="metered_by_events",
            details={"feature": feature},
        )
    with transaction.atomic():
        counter = _locked_counter(customer, feature_row)  # serialises changes per customer+feature
        entry = _effective(customer, feature_row)
        held = sum(1 for expiry in entry["leases"] if expiry > time.time())
        if value is not None:
            counter.value = value
        else:
            new_value = counter.value + delta
            if new_value < 0:
                raise CounterUnderflow(
                    f"'{feature}' is at {counter.value}; it cannot go below zero.",
                    details={"feature": feature, "used": counter.value, "delta": delta},
                )
            if delta > 0:
                if not entry["enabled"]:
                    raise NotInTier(
                        f"'{feature}' is not in the customer's tier.", details={"feature": feature}
                    )
                if entry["limit"] is not None and new_value + held > entry["limit"]:
                    raise LimitReached(
                        f"'{feature}' would pass its limit of {entry['limit']}.",
                        details={
                            "feature": feature,
                            "used": counter.value + held,
                            "limit": entry["limit"],
                            "delta": delta,
                        },
                    )
            counter.value = new_value
        counter.save(update_fields=["value", "updated_at"])
        invalidate_on_commit(customer.external_id)
    return Usage(feature=feature, used=counter.value + held, limit=entry["limit"])


# --- leases -------------------------------------------------------------------------------------


def _ttl(ttl_seconds: int | None) -> dt.timedelta:
    seconds = settings.LEASE_DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    return dt.timedelta(seconds=max(1, min(seconds, settings.LEASE_MAX_TTL_SECONDS)))


def lease_acquire(*, customer: Customer, feature: str, ttl_seconds: int | None = None) -> tuple[Lease, Usage]:
    """Hold one slot of a limit feature (a concurrent job) until released or `ttl` passes."""
    feature_row = _feature_for_usage(feature, (FeatureKind.LIMIT,))
    with transaction.atomic():
        counter = _locked_counter(customer, feature_row)
        entry = _effective(customer, feature_row)
        if not entry["enabled"]:
            raise NotInTier(f"'{feature}' is not in the customer's tier.", details={"feature": feature})
        now = timezone.now()
        held = Lease.objects.filter(
            customer=customer, feature=feature_row, released_at__isnull=True, expires_at__gt=now
        ).count()
        used = counter.value + held
        if entry["limit"] is not None and used + 1 > entry["limit"]:
            raise LimitReached(
                f"All {entry['limit']} '{feature}' slots are held.",
                details={"feature": feature, "used": used, "limit": entry["limit"]},
            )
        lease = Lease.objects.create(
            customer=customer, feature=feature_row, expires_at=now + _ttl(ttl_seconds)
        )
        invalidate_on_commit(customer.external_id)
    return lease, Usage(feature=feature, used=used + 1, limit=entry["limit"])


def _lease_get_for_update(*, customer: Customer, feature: str, lease_id) -> Lease:
    lease = (
        Lease.objects.select_for_update()
        .select_related("feature")
        .filter(pk=lease_id, customer=customer, feature__code=feature)
        .first()
    )
    if lease is None:
        raise LeaseNotFound("No such lease.", details={"lease": str(lease_id)})
    return lease


def lease_renew(*, customer: Customer, feature: str, lease_id, ttl_seconds: int | None = None) -> Lease:
    """Extend a held lease (a heartbeat). An expired or released lease cannot be renewed: its slot
    may already be someone else's; acquire a new one."""
    with transaction.atomic():
        lease = _lease_get_for_update(customer=customer, feature=feature, lease_id=lease_id)
        now = timezone.now()
        if lease.released_at is not None or lease.expires_at <= now:
            raise LeaseExpired("The lease was released or has expired.", details={"lease": str(lease.pk)})
        lease.expires_at = now + _ttl(ttl_seconds)
        lease.save(update_fields=["expires_at"])
        invalidate_on_commit(customer.external_id)
    return lease


def lease_release(*, customer: Customer, feature: str, lease_id) -> Lease:
    """Free the slot. Releasing twice is fine."""
    with transaction.atomic():
        lease = _lease_get_for_update(customer=customer, feature=feature, lease_id=lease_id)
        if lease.released_at is None:
            lease.released_at = timezone.now()
            lease.save(update_fields=["released_at"])
            invalidate_on_commit(customer.external_id)
    return lease


def leases_purge(*, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Housekeeping: delete leases released or expired more than `older_than` ago."""
    cutoff = timezone.now() - older_than
    deleted, _ = Lease.objects.filter(expires_at__lt=cutoff).delete()
    deleted_released, _ = Lease.objects.filter(released_at__lt=cutoff).delete()
    return deleted + deleted_released
