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
