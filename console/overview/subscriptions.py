"""Subscriptions over time, from the membership history (one query): MRR per currency, how many
are active / trialing / past due on each day, and the new and churned ones each day.

MRR, as Stripe counts it: the memberships that are `active` or `past_due` (not trialing, paused
or canceled), each at its membership's current price and its quantity (seats) at that time,
normalized to a month (a yearly price / 12), summed per currency and rounded half-up once per
currency and day. Prices that are not recurring or bill usage (`one_time`, a meter, graduated,
volume or package models) and memberships without a price (granted by hand) count 0. ARR is
MRR x 12. A membership that changed price shows at its current price over its whole history (the
history keeps its tier and quantity, not its price).

New: a membership that became trialing, active or past due from nothing (or incomplete). Churned:
one that became canceled or expired from trialing, active, past due or paused. Days are UTC days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from console.overview.range import DateRange

COUNTED_STATUSES = ("active", "trialing", "past_due", "paused")
NEW_FROM = ("trialing", "active", "past_due")
CHURNED_TO = ("canceled", "expired")
CHURNED_FROM = ("trialing", "active", "past_due", "paused")

# The window walks the history alone (status and quantity, no join, no numbers); the changes are
# then counted per membership's price, day and move, and each group priced once: a group's MRR
# change is its count x (MRR after - MRR before), the same numeric value as adding each row's.
_SQL = """
WITH history AS (
    SELECT membership_id, at, status, quantity,
           LAG(status) OVER w AS prev_status, LAG(quantity) OVER w AS prev_quantity
      FROM memberships_membershiphistory
     WHERE at < %(until)s
    WINDOW w AS (PARTITION BY membership_id ORDER BY at, id)
), moves AS (
    SELECT m.price_id, GREATEST((h.at AT TIME ZONE 'UTC')::date, %(start)s::date) AS day, h.status,
           h.prev_status, h.quantity, h.prev_quantity, h.at >= %(since)s AS in_range, COUNT(*) AS n
      FROM history h
      JOIN memberships_membership m ON m.id = h.membership_id
     GROUP BY 1, 2, 3, 4, 5, 6, 7
), priced AS (
    SELECT mv.day, mv.status, mv.prev_status, mv.in_range, mv.n, p.currency,
           CASE WHEN mv.status IN ('active', 'past_due') AND p.meter = ''
                     AND p.interval IN ('month', 'year') AND p.model IN ('flat', 'per_seat')
                THEN COALESCE(p.unit_amount_decimal, p.unit_amount) * mv.quantity
                     / CASE p.interval WHEN 'year' THEN 12 ELSE 1 END
                ELSE 0 END AS mrr,
           CASE WHEN mv.prev_status IN ('active', 'past_due') AND p.meter = ''
                     AND p.interval IN ('month', 'year') AND p.model IN ('flat', 'per_seat')
                THEN COALESCE(p.unit_amount_decimal, p.unit_amount) * mv.prev_quantity
                     / CASE p.interval WHEN 'year' THEN 12 ELSE 1 END
                ELSE 0 END AS prev_mrr
      FROM moves mv
      LEFT JOIN tiers_price p ON p.id = mv.price_id
)
SELECT day, currency, status, prev_status, in_range, SUM((mrr - prev_mrr) * n), SUM(n)::bigint
  FROM priced
 WHERE mrr <> prev_mrr OR status IS DISTINCT FROM prev_status
 GROUP BY 1, 2, 3, 4, 5
"""


def _running(deltas: dict[dt.date, Decimal], dates: list[dt.date]) -> list[Decimal]:
    """The running total on each date (the first date carries everything before the range)."""
    total, values = Decimal(0), []
    for day in dates:
        total += deltas.get(day, 0)
        values.append(total)
    return values


def _minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def subscription_figures(*, period: DateRange) -> dict:
    """MRR per currency and subscription counts on each day of `period`, and the new and churned
    memberships each day. See the module's docstring for what counts."""
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"start": period.start, "since": period.since, "until": period.until})
        rows = cursor.fetchall()
    mrr: dict[str, dict] = defaultdict(lambda: defaultdict(Decimal))
    status: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    moves: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for day, currency, now, before, in_range, mrr_delta, n in rows:
        if currency is not None and mrr_delta:
            mrr[currency][day] += Decimal(mrr_delta)
        if now != before:
            status[now][day] += n
            if before is not None:
                status[before][day] -= n
        if in_range and now in NEW_FROM and (before is None or before == "incomplete"):
            moves["new"][day] += n
        elif in_range and now in CHURNED_TO and before in CHURNED_FROM:
            moves["churned"][day] += n
    dates = period.dates()
    mrr_series = {
        currency: [_minor(v) for v in _running(deltas, dates)] for currency, deltas in sorted(mrr.items())
    }
    counts = {s: [int(v) for v in _running(status.get(s, {}), dates)] for s in COUNTED_STATUSES}
    new = [moves["new"].get(day, 0) for day in dates]
    churned = [moves["churned"].get(day, 0) for day in dates]
    return {
        "mrr": [
            {
                "currency": currency,
                "amount": series[-1],
                "arr": series[-1] * 12,
                "series": [{"date": d, "amount": a} for d, a in zip(dates, series, strict=True)],
            }
            for currency, series in mrr_series.items()
            if any(series)
        ],
        "subscriptions": {
            **{s: counts[s][-1] for s in COUNTED_STATUSES},
            "new": sum(new),
            "churned": sum(churned),
            "series": [
                {
                    "date": d,
                    **{s: counts[s][i] for s in COUNTED_STATUSES},
                    "new": new[i],
                    "churned": churned[i],
                }
                for i, d in enumerate(dates)
            ],
        },
    }
