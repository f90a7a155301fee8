"""The overview's one read: every figure over a date range, each with its daily series. About ten
queries whatever the tenant's size (no query per day or per customer); usage is read from the
meter sync's tables, never from raw events.

The figures of a range are kept OVERVIEW_CACHE_SECONDS (default 60) in the cache (per tenant: the
cache's keys carry the schema), so a dashboard left open or reloaded by a team costs the database
once a minute; `as_of` says when they were computed and `fresh=True` recomputes them. A cache that
is down only costs the recomputation."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from console.overview.operations import failed_payment_figures, usage_sync_figures, webhook_figures
from console.overview.range import DateRange
from console.overview.revenue import revenue_figures
from console.overview.subscriptions import subscription_figures

logger = logging.getLogger(__name__)


def _cache_seconds() -> int:
    return int(getattr(settings, "OVERVIEW_CACHE_SECONDS", 60))


def _key(period: DateRange) -> str:
    return f"console:overview:v1:{period.start}:{period.end}"


def overview_compute(*, period: DateRange) -> dict:
    """The figures, computed now (see overview_get)."""
    figures = subscription_figures(period=period)
    return {
        "from": period.start,
        "to": period.end,
        "as_of": timezone.now(),
        "mrr": figures["mrr"],
        "subscriptions": figures["subscriptions"],
        "revenue": revenue_figures(period=period),
        "failed_payments": failed_payment_figures(period=period),
        "usage_sync": usage_sync_figures(period=period),
        "webhooks": webhook_figures(period=period),
    }


def overview_get(*, period: DateRange, fresh: bool = False) -> dict:
    """MRR/ARR and subscriptions (as of the range's last day), new and churned memberships, net
    revenue from the ledger, failed payments, unsynced usage and webhook health over `period`: at
    most OVERVIEW_CACHE_SECONDS old unless `fresh`."""
    seconds = _cache_seconds()
    if not fresh and seconds > 0:
        try:
            cached = cache.get(_key(period))
        except Exception:  # the cache being down must not take the page down: compute instead
            logger.warning("overview cache unavailable", exc_info=True)
            cached = None
        if cached is not None:
            return cached
    figures = overview_compute(period=period)
    if seconds > 0:
        try:
            cache.set(_key(period), figures, seconds)
        except Exception:
            logger.warning("overview cache unavailable", exc_info=True)
    return figures
