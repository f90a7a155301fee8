"""The revenue report, read from the ledger: per UTC day or calendar month and currency,

    billed      invoices finalized in the period (total, tax included) and not voided since, and
                tips paid in the period (a tip is billed and paid at once)
    collected   charges received in the period (what they took off `receivable`)
    deferred    deferred revenue at the period's end (not yet recognized)
    recognized  revenue recognized in the period (billing.ledger.recognition; a voided invoice's
                recognized revenue taken back counts negative on the day it was voided), and tips,
                recognized when paid (nothing is owed for them later)

All figures are positive minor units. One query over the entries from the first period on (the
deferred balance at each period's end is the running balance less what was posted after it).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from billing.ledger.models import AccountBalance

INTERVALS = ("day", "month")
FIGURES = ("billed", "collected", "deferred", "recognized")


@dataclass(frozen=True)
class RevenuePeriod:
    period_start: dt.date
    period_end: dt.date  # exclusive
    currency: str
    billed: int
    collected: int
    deferred: int
    recognized: int


def _next(day: dt.date, interval: str) -> dt.date:
    if interval == "day":
        return day + dt.timedelta(days=1)
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def report_periods(*, start: dt.date, end: dt.date, interval: str) -> list[tuple[dt.date, dt.date]]:
    """[start, end] (both days included) cut into days or calendar months, clipped to the range."""
    periods, day = [], start
    while day <= end:
        following = _next(day, interval)
        periods.append((day, min(following, end + dt.timedelta(days=1))))
        day = following
    return periods


_SQL = """
SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.currency,
    COALESCE(SUM(e.amount) FILTER (WHERE a.code = 'receivable' AND t.source IN ('invoice', 'tip')
        AND NOT EXISTS (SELECT 1 FROM ledger_journaltransaction r WHERE r.reverses_id = t.id)), 0),
    COALESCE(-SUM(e.amount) FILTER (WHERE a.code = 'receivable' AND t.source = 'payment' AND e.amount < 0), 0),
    COALESCE(-SUM(e.amount) FILTER (WHERE a.code = 'deferred_revenue'), 0),
    COALESCE(-SUM(e.amount) FILTER (WHERE (a.code = 'revenue' AND t.source = 'recognition')
        OR a.code = 'tips'), 0)
FROM ledger_journalentry e
JOIN ledger_ledgeraccount a ON a.id = e.account_id
JOIN ledger_journaltransaction t ON t.id = e.transaction_id
WHERE e.occurred_at >= %(since)s AND a.code IN ('receivable', 'deferred_revenue', 'revenue', 'tips')
    AND (%(currency)s::text IS NULL OR e.currency = %(currency)s::text)
GROUP BY 1, 2
"""


def revenue_report(
    *, start: dt.date, end: dt.date, interval: str = "day", currency: str | None = None
) -> list[RevenuePeriod]:
    """The report's rows, period by period, each currency in order (the currencies the ledger's
    receivable, deferred revenue or revenue hold, or only `currency`)."""
    since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"since": since, "currency": currency})
        rows = cursor.fetchall()
    sums: dict[tuple[dt.date, str], tuple[int, int, int, int]] = {}
    for day, cur, billed, collected, deferred_in, recognized in rows:
        sums[(day, cur)] = (int(billed), int(collected), int(deferred_in), int(recognized))
    balances = AccountBalance.objects.filter(account__code__in=("receivable", "deferred_revenue", "revenue"))
    if currency:
        balances = balances.filter(currency=currency)
    currencies = sorted({b.currency for b in balances} | {cur for _, cur in sums})
    deferred_now = defaultdict(
        int,
        {
            b.currency: -b.balance
            for b in AccountBalance.objects.filter(account__code="deferred_revenue", currency__in=currencies)
        },
    )
    periods = report_periods(start=start, end=end, interval=interval)
    result = []
    for cur in currencies:
        days = [(day, figures) for (day, c), figures in sums.items() if c == cur]
        for period_start, period_end in periods:
            inside = [f for day, f in days if period_start <= day < period_end]
            after = sum(f[2] for day, f in days if day >= period_end)
            result.append(
                RevenuePeriod(
                    period_start=period_start, period_end=period_end, currency=cur,
                    billed=sum(f[0] for f in inside), collected=sum(f[1] for f in inside),
                    deferred=deferred_now[cur] - after, recognized=sum(f[3] for f in inside),
                )
            )  # fmt: skip
    result.sort(key=lambda row: (row.period_start, row.currency))
    return result
