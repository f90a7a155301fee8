"""Prometheus metrics (prometheus-client). Exposed at /metrics on the operator host.

Every series a scrape should always see is created at import with its known labels (at zero), and
/metrics imports this module, so the first scrape after a start is never empty (under gunicorn's
multiprocess mode a series exists only once a process has created it). Under multiprocess mode
the directory is created when missing: prometheus-client writes its files there from the first
series on, and a missing one made every import of this module (and so every page) fail."""

import os

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import Counter, Gauge  # noqa: E402

UP = Gauge("monetize_up", "1 while a Monetize process serves.", multiprocess_mode="max")
UP.set(1)
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
for _reason in ("ok", "not_in_tier", "limit_reached", "rate_limited", "insufficient_credits"):
    ENTITLEMENT_CHECKS.labels(reason=_reason)
RECONCILIATION_DIFFERENCES = Gauge(
    "monetize_reconciliation_differences",
    "Unexplained differences between the ledger and a provider's books, as of the latest reconciliation run.",
    ["tenant", "provider"],
    multiprocess_mode="mostrecent",
)
