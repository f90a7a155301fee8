"""Reads: what a customer is entitled to now (the snapshot), from Redis or PostgreSQL."""

from __future__ import annotations

import time
from collections import defaultdict

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.entitlements import cache
from billing.entitlements.models import EntitlementOverride, Lease, UsageCounter
from billing.memberships.models import Customer
from billing.memberships.selectors import (
    customer_tier,
    entitled_membership,
    grace_ends_at,
    membership_current,
)
from billing.tiers.models import Feature, FeatureKind, TierFeature
from kernel.db import one_snapshot


def _entry(feature: Feature, tf: TierFeature | None, override: EntitlementOverride | None) -> dict:
    enabled = bool(tf and tf.enabled)
    limit = tf.limit_value if tf else None
    rate = [tf.rate_limit, tf.rate_window_seconds] if tf and tf.rate_limit else None
    if override is not None:
        if override.enabled is not None:
            enabled = override.enabled
        if override.unlimited:
            limit = None
        elif override.limit_value is not None:
            limit = override.limit_value
        if override.rate_limit and override.rate_window_seconds:
            rate = [override.rate_limit, override.rate_window_seconds]
        elif override.rate_limit:
            rate = [override.rate_limit, rate[1] if rate else 60]
    return {
        "kind": feature.kind,
        "enabled": enabled,
        "limit": limit,
        "rate": rate,
        "override": override is not None,
    }


_UNREAD = object()


def snapshot_build(*, customer: Customer, membership=_UNREAD) -> dict:
    """Everything a check needs, from PostgreSQL: tier, each catalog feature's effective value
    (tier + override), counter values and the expiry times of held leases. `membership`: the
    customer's entitled membership (or None) when the caller has read it already."""
    now = timezone.now()
    if membership is _UNREAD:
        membership = entitled_membership(customer=customer)
    tier = membership.tier if membership else customer_tier(customer=customer)
    tier_features = {tf.feature_id: tf for tf in TierFeature.objects.filter(tier=tier)} if tier else {}
    overrides = {
        o.feature_id: o
        for o in EntitlementOverride.objects.filter(customer=customer).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
    }
    counters = dict(UsageCounter.objects.filter(customer=customer).values_list("feature_id", "value"))
    leases = defaultdict(list)
    for feature_id, expires_at in Lease.objects.filter(
        customer=customer, released_at__isnull=True, expires_at__gt=now
    ).values_list("feature_id", "expires_at"):
        leases[feature_id].append(expires_at.timestamp())
    catalog = list(Feature.objects.all())
    metered, period_end = _metered_usage(customer=customer, membership=membership, features=catalog)
    features = {}
    for feature in catalog:
        entry = _entry(feature, tier_features.get(feature.pk), overrides.get(feature.pk))
        entry["used"] = metered[feature.pk] if feature.pk in metered else counters.get(feature.pk, 0)
        entry["leases"] = sorted(leases.get(feature.pk, []))
        features[feature.code] = entry
    expiries = [o.expires_at.timestamp() for o in overrides.values() if o.expires_at]
    if period_end is not None:  # metered usage starts again with the next period
        expiries.append(period_end.timestamp())
    from billing.metering.credit_selectors import credits_for_snapshot

    credits, credit_minimums, credits_change = credits_for_snapshot(customer=customer, now=now)
    for code, minimum in credit_minimums.items():
        if code in features:  # the check denies below it: insufficient_credits
            features[code]["credits_min"] = minimum
    if credits_change is not None:  # a grant starts or expires: the usable balance changes
        expiries.append(credits_change.timestamp())
    grace_end = grace_ends_at(membership)
    if grace_end is not None:  # the snapshot must not outlive the dunning grace period
        expiries.append(grace_end.timestamp())
    return {
        "customer": customer.external_id,
        "tier": tier.code if tier else None,
        "tier_name": tier.name if tier else None,
        "features": features,
        "credits": credits,
        "valid_until": min(expiries) if expiries else None,
    }


def _metered_usage(*, customer: Customer, membership, features: list[Feature]) -> tuple[dict, object]:
    """This period's usage of each metered feature that has a meter (features without one keep
    counting with counters), and the period's end."""
    from billing.metering.models import Meter
    from billing.metering.selectors import current_period, period_usage

    metered_ids = [f.pk for f in features if f.kind == FeatureKind.METERED]
    if not metered_ids:
        return {}, None
    meters = list(Meter.objects.filter(feature_id__in=metered_ids, active=True))
    if not meters:
        return {}, None
    start, end = current_period(customer=customer, membership=membership)
    totals = period_usage(customer=customer.external_id, meters=meters, start=start, end=end)
    return {m.feature_id: totals.get(m.pk) or 0 for m in meters}, end


def entitlement_snapshot(
    *, external_id: str, cached: dict | cache.Miss | None = None, now: float | None = None
) -> dict | None:
    """The customer's snapshot, cached in Redis; None for an unknown customer. `cached` is what
    the caller already read from Redis (the hot paths' scripts), `now` the time it judged it by."""
    now = time.time() if now is None else now
    if cached is None:
        cached = cache.read(external_id)
    if not isinstance(cached, cache.Miss):
        if cached.get("valid_until") is None or cached["valid_until"] > now:
            return cached
        cached = cache.Miss(None)  # an override expired inside the cached window: rebuild, don't store
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        return None
    snapshot = snapshot_build(customer=customer)
    ttl = settings.ENTITLEMENT_CACHE_SECONDS
    if snapshot["valid_until"] is not None:
        ttl = min(ttl, int(snapshot["valid_until"] - time.time()))
    cache.store(external_id, snapshot, cached, ttl)
    return snapshot


def plan_with_snapshot(*, customer: Customer) -> tuple[object, dict]:
    """The customer's membership and their snapshot (tier, features, usage) as of one moment, from
    PostgreSQL: what a page shows side by side. The snapshot cache hears of a webhook's change only
    after its commit, so a cached snapshot read beside the new membership could show the old tier
    above it (and the plan page then stopped waiting for the change)."""
    with one_snapshot():
        return membership_current(customer=customer), snapshot_build(customer=customer)


def feature_usage(entry: dict, now: float | None = None) -> int:
    """Counter value plus leases still held."""
    now = now or time.time()
    return entry["used"] + sum(1 for expiry in entry["leases"] if expiry > now)
