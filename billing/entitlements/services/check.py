"""The check: "may customer X use feature Y now?" from the cached snapshot (selectors.entitlement_snapshot),
with one GCRA script in Redis for rate features."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.db import connection

from billing.entitlements import cache
from billing.entitlements.exceptions import (
    UnknownFeature,
)
from billing.entitlements.ratelimit import RateDecision, decision_from_reply, rate_limit_hit
from billing.entitlements.selectors import entitlement_snapshot, feature_usage
from billing.memberships.exceptions import CustomerNotFound
from billing.tiers.models import FeatureKind
from kernel.metrics import ENTITLEMENT_CHECKS, REDIS_FALLBACKS
from kernel.redis import REDIS_ERRORS, trip, warn_throttled

logger = logging.getLogger("billing.entitlements.services")


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
