"""Entitlements: the check, counters, leases, overrides and customer API keys.

The check reads a cached snapshot (selectors.entitlement_snapshot) and, for rate features, runs
one GCRA script in Redis. Counters and leases are enforced in PostgreSQL with conditional writes
under a row lock, so a limit of N grants exactly N under any concurrency; every change
invalidates the customer's snapshot after commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.entitlements import cache
from billing.entitlements.exceptions import (
    CounterUnderflow,
    CustomerKeyInactive,
    LeaseExpired,
    LeaseNotFound,
    LimitReached,
    NotInTier,
    UnknownFeature,
    WrongFeatureKind,
)
from billing.entitlements.models import CustomerApiKey, EntitlementOverride, Lease, UsageCounter
from billing.entitlements.ratelimit import RateDecision, decision_from_reply, rate_limit_hit
from billing.entitlements.selectors import entitlement_snapshot, feature_usage, snapshot_build
from billing.memberships.exceptions import CustomerNotFound
from billing.memberships.models import Customer
from billing.tiers.models import Feature, FeatureKind
from kernel import keycache
from kernel.metrics import ENTITLEMENT_CHECKS, REDIS_FALLBACKS
from kernel.redis import REDIS_ERRORS, trip, warn_throttled

logger = logging.getLogger(__name__)


class Reason:
    OK = "ok"
    NOT_IN_TIER = "not_in_tier"
    LIMIT_REACHED = "limit_reached"
    RATE_LIMITED = "rate_limited"
    INSUFFICIENT_CREDITS = "insufficient_credits"


@dataclass
class Decision:
    allowed: bool
    feature: str
    kind: str
    tier: str | None
    reason: str
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    rate: RateDecision | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        body = {
            "allowed": self.allowed,
            "feature": self.feature,
            "kind": self.kind,
            "tier": self.tier,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "reason": self.reason,
        }
        if self.rate is not None:
            body["rate_limit"] = self.rate.as_dict()
        return body


def invalidate_on_commit(external_id: str) -> None:
    """Drop the snapshot now (reads later in this transaction rebuild it) and again on commit (a
    concurrent reader may have rebuilt it from pre-commit rows in between)."""
    cache.invalidate(external_id)
    transaction.on_commit(lambda: cache.invalidate(external_id))


# --- the check ----------------------------------------------------------------------------------


def _rate(
    *, snapshot: dict, feature: str, limit: int, window: int, quantity: int, fail_open: bool
) -> RateDecision:
    try:
        return rate_limit_hit(
            customer=snapshot["customer"],
            feature=feature,
            limit=limit,
            window_seconds=window,
            quantity=quantity,
        )
    except REDIS_ERRORS as exc:  # Redis down: the tenant's chosen failure mode decides
        trip(exc)
        REDIS_FALLBACKS.labels(component="rate_limit").inc()
        warn_throttled(
            f"rate-limit-{fail_open}", "rate limit unavailable (fail-%s)", "open" if fail_open else "closed"
        )
        return RateDecision(
            allowed=fail_open, limit=limit, remaining=limit if fail_open else 0, reset_seconds=0,
            retry_after_seconds=0 if fail_open else 1,
        )  # fmt: skip


def decide(
    *,
    snapshot: dict,
    feature: str,
    quantity: int = 1,
    fail_open: bool = True,
    rate: RateDecision | None = None,
) -> Decision:
    """Whether the snapshot's customer may use `quantity` of `feature` now. Rate features consume
    from their bucket when allowed; limits are only read (counters and leases move them)."""
    entry = snapshot["features"].get(feature)
    if entry is None:
        raise UnknownFeature(f"No feature '{feature}' in the catalog.", details={"feature": feature})
    decision = Decision(
        allowed=False, feature=feature, kind=entry["kind"], tier=snapshot["tier"], reason=Reason.OK
    )
    if not entry["enabled"]:
        decision.reason = Reason.NOT_IN_TIER
    elif entry.get("credits_min") is not None and snapshot.get("credits", 0) < entry["credits_min"]:
        decision.reason = Reason.INSUFFICIENT_CREDITS
    elif entry["kind"] == FeatureKind.BOOLEAN:
        decision.allowed = True
    elif entry["kind"] == FeatureKind.RATE:
        if not entry["rate"]:
            decision.reason = Reason.NOT_IN_TIER
        else:
            limit, window = entry["rate"]
            if rate is None:  # not already taken by the snapshot script
                rate = _rate(
                    snapshot=snapshot,
                    feature=feature,
                    limit=limit,
                    window=window,
                    quantity=quantity,
                    fail_open=fail_open,
                )
            decision.rate, decision.limit, decision.remaining = rate, limit, rate.remaining
            decision.used = limit - rate.remaining
            decision.allowed = rate.allowed
            decision.reason = Reason.OK if rate.allowed else Reason.RATE_LIMITED
    else:
        used = feature_usage(entry)
        decision.used, decision.limit = used, entry["limit"]
        if entry["limit"] is None:
            decision.allowed = True
        else:
            decision.remaining = max(0, entry["limit"] - used)
            decision.allowed = used + quantity <= entry["limit"]
            decision.reason = Reason.OK if decision.allowed else Reason.LIMIT_REACHED
    ENTITLEMENT_CHECKS.labels(reason=decision.reason).inc()
    return decision


def entitlement_check(
    *, customer: str, feature: str, quantity: int = 1, prefetched: cache.Prefetched | None = None
) -> Decision:
    """One Redis round trip when the snapshot is cached (rate step included), else PostgreSQL.
    `prefetched`: what the API already read in its round trip together with the caller's key."""
    if prefetched is not None and prefetched.snapshot is not None:
        now, cached, rate_reply = prefetched.now, prefetched.snapshot, prefetched.rate
    else:
        now = time.time()
        cached, rate_reply = cache.read_for_check(customer, feature=feature, quantity=quantity, now=now)
    snapshot = entitlement_snapshot(external_id=customer, cached=cached, now=now)
    if snapshot is None:
        raise CustomerNotFound(f"No customer with external_id '{customer}'.", details={"customer": customer})
    rate = decision_from_reply(rate_reply) if rate_reply else None
    return decide(snapshot=snapshot, feature=feature, quantity=quantity, fail_open=_fail_open(), rate=rate)


def _fail_open() -> bool:
    return getattr(connection.tenant, "rate_limit_failure_mode", "open") == "open"


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


# --- customer API keys --------------------------------------------------------------------------


def customer_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def customer_key_create(*, customer: Customer, name: str = "") -> tuple[CustomerApiKey, str]:
    """`sk-<tenant slug>-<32 hex>` (128 random bits). Returns the row and the secret, shown once."""
    raw = f"sk-{connection.tenant.slug}-{secrets.token_hex(16)}"
    key = CustomerApiKey.objects.create(
        customer=customer,
        name=name.strip()[:100],
        prefix=raw[: len(raw) - 26],
        key_hash=customer_key_hash(raw),
    )
    return key, raw


def customer_key_revoke(*, key: CustomerApiKey) -> CustomerApiKey:
    with transaction.atomic():
        key = CustomerApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        keycache.forget_on_commit("ck", key.key_hash)
    return key


def customer_key_rotate(*, key: CustomerApiKey) -> tuple[CustomerApiKey, str]:
    """Replace a key: the new one works at once, the old one stops at once (end-user keys have no
    grace period; an integrator that needs one creates a second key first)."""
    with transaction.atomic():
        old = CustomerApiKey.objects.select_for_update().select_related("customer").get(pk=key.pk)
        if old.revoked_at is not None:
            raise CustomerKeyInactive("A revoked key cannot be rotated.", details={"id": old.pk})
        new, raw = customer_key_create(customer=old.customer, name=old.name)
        old.revoked_at = timezone.now()
        old.rotated_to = new
        old.save(update_fields=["revoked_at", "rotated_to"])
        keycache.forget_on_commit("ck", old.key_hash)
    return new, raw


@dataclass
class Verification:
    valid: bool
    customer: str | None = None
    key_id: int | None = None
    snapshot: dict | None = None
    decision: Decision | None = None


def customer_key_verify(
    *,
    raw_key: str,
    feature: str | None = None,
    quantity: int = 1,
    prefetched: cache.VerifyPrefetched | None = None,
) -> Verification:
    """Is this end-user key valid here, and (with `feature`) may its customer use the feature now?
    One call per gateway request: key lookup, entitlement and rate limit (`prefetched`: what the
    API read in its single Redis round trip)."""
    if not isinstance(raw_key, str) or not raw_key.startswith("sk-") or len(raw_key) > 200:
        return Verification(valid=False)
    hashed = customer_key_hash(raw_key)
    if prefetched is not None and prefetched.key_read:
        now, entry, cached, rate_reply = (
            prefetched.now,
            prefetched.key_entry,
            prefetched.snapshot,
            prefetched.rate,
        )
        if entry is None:
            cached = None
    else:
        now = time.time()
        entry, cached, rate_reply = cache.read_key_and_snapshot(
            "ck", hashed, feature=feature, quantity=quantity, now=now
        )
    if entry is None:
        row = (
            CustomerApiKey.objects.filter(key_hash=hashed, revoked_at__isnull=True)
            .select_related("customer")
            .only("id", "customer__external_id")
            .first()
        )
        entry = {"id": row.pk, "customer": row.customer.external_id} if row else keycache.MISSING
        keycache.put("ck", hashed, entry)
        cached = None
    if entry.get("missing"):
        return Verification(valid=False)
    snapshot = entitlement_snapshot(external_id=entry["customer"], cached=cached, now=now)
    if snapshot is None:  # the customer was deleted under a cached key
        return Verification(valid=False)
    result = Verification(valid=True, customer=entry["customer"], key_id=entry["id"], snapshot=snapshot)
    if feature is not None:
        rate = decision_from_reply(rate_reply) if rate_reply else None
        result.decision = decide(
            snapshot=snapshot, feature=feature, quantity=quantity, fail_open=_fail_open(), rate=rate
        )
    return result
