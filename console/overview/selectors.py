"""The overview's one read: every figure over a date range, each with its daily series. About ten
queries whatever the tenant's size (no query per day or per customer); usage is read from the
meter sync's tables, never from raw events."""

from __future__ import annotations

from console.overview.operations import failed_payment_figures, usage_sync_figures, webhook_figures
from console.overview.range import DateRange
from console.overview.revenue import revenue_figures
from console.overview.subscriptions import subscription_figures


def overview_get(*, period: DateRange) -> dict:
    """MRR/ARR and subscriptions (as of the range's last day), new and churned memberships, net
    revenue from the ledger, failed payments, unsynced usage and webhook health over `period`."""
    figures = subscription_figures(period=period)
    return {
        "from": period.start,
        "to": period.end,
        "mrr": figures["mrr"],
        "subscriptions": figures["subscriptions"],
        "revenue": revenue_figures(period=period),
        "failed_payments": failed_payment_figures(period=period),
        "usage_sync": usage_sync_figures(period=period),
        "webhooks": webhook_figures(period=period),
    }
