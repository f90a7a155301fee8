"""Prometheus metrics (prometheus-client). Exposed at /metrics on the operator host."""

from prometheus_client import Counter

REDIS_FALLBACKS = Counter(
    "monetize_redis_fallbacks_total",
    "Requests answered without Redis (PostgreSQL or failure mode).",
    ["component"],
)
ENTITLEMENT_CHECKS = Counter("monetize_entitlement_checks_total", "Entitlement decisions.", ["reason"])
WEBHOOKS_RECEIVED = Counter(
    "monetize_webhooks_received_total", "Provider webhooks by outcome.", ["provider", "outcome"]
)
ENQUEUE_FAILURES = Counter(
    "monetize_enqueue_failures_total",
    "Tasks that could not be published (broker down or frozen); a sweeper picks their work up.",
    ["task"],
)
REDIS_INVALIDATIONS_DEFERRED = Counter(
    "monetize_cache_invalidations_deferred_total",
    "Cache invalidations Redis did not take, kept in PostgreSQL and replayed when it answers.",
    ["kind"],
)
