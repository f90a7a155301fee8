"""Reads of usage: from the hourly rollups only, never from raw events.

Ranges are whole hours (UTC): `start` is rounded down and `end` up to the hour, because rollups are
hourly. Windows are UTC hours, days or calendar months. A customer's usage reads the hourly rollups per
customer; the tenant's reads the tenant's hourly totals; top customers read the monthly totals (all
three add the deltas not folded yet, see rollups.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from billing.metering.exceptions import InvalidUsageQuery
from billing.metering.models import Aggregation, Meter
from billing.metering.rollups import customer_rollup_sql

WINDOWS = ("hour", "day", "month")
MAX_BUCKETS = 10_000
_STEP = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def _floor_hour(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(when: dt.datetime) -> dt.datetime:
    floor = _floor_hour(when)
    return floor if floor == when else floor + dt.timedelta(hours=1)


def month_start(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(month: dt.datetime) -> dt.datetime:
    """The start of the month after the one starting at `month`."""
    return _next_month(month)


def _next_month(when: dt.datetime) -> dt.datetime:
    return when.replace(year=when.year + (when.month == 12), month=when.month % 12 + 1)


def _number(value) -> int | float | None:
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _exact(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def _aggregate_sql(aggregation: str) -> str:
    return {
        Aggregation.COUNT: "sum(count)",
        Aggregation.SUM: "sum(sum)",
        Aggregation.MAX: "max(max)",
        Aggregation.MIN: "min(min)",
        Aggregation.LATEST: "(array_agg(latest ORDER BY latest_ts DESC))[1]",
    }[aggregation]


def usage_series(
    *,
    meter: Meter,
    start: dt.datetime,
    end: dt.datetime,
    window: str = "day",
    customer: str | None = None,
) -> list[dict]:
    """Usage per window between start and end, for one customer or (customer=None) the whole
    tenant. Windows with no usage are listed with value 0 (null for min/max/latest)."""
    if window not in WINDOWS:
        raise InvalidUsageQuery(f"'window' is one of {', '.join(WINDOWS)}.", details={"field": "window"})
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidUsageQuery("'from' and 'to' need a time zone offset.")
    start, end = _floor_hour(start), _ceil_hour(end)
    if end <= start:
        raise InvalidUsageQuery("'to' must be after 'from'.", details={"from": start, "to": end})
    buckets = _buckets(start, end, window)
    if len(buckets) > MAX_BUCKETS:
        raise InvalidUsageQuery(
            f"That range has more than {MAX_BUCKETS} {window}s: use a larger window.",
            details={"window": window},
        )
    where, params = "meter_id = %s AND hour >= %s AND hour < %s", [meter.pk, start, end]
    bucket = f"date_trunc('{window}', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        if customer is not None:
            where += " AND customer = %s"
            params.append(customer)
        sql = (
            f"SELECT {bucket} AS b, count(DISTINCT value) FROM metering_rollup_value WHERE {where} GROUP BY b"
        )
    else:
        # the tenant's totals have an hourly rollup of their own (one row per hour, not per customer)
        source, source_params = (
            customer_rollup_sql([customer]) if customer is not None else ("metering_rollup_tenant_all", [])
        )
        sql = f"SELECT {bucket} AS b, {_aggregate_sql(meter.aggregation)} FROM {source} AS r WHERE {where} GROUP BY b"
        params = source_params + params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = {row[0]: row[1] for row in cursor.fetchall()}
    empty = 0 if meter.aggregation in (Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT) else None
    series = []
    for i, bucket_start in enumerate(buckets):
        bucket_end = buckets[i + 1] if i + 1 < len(buckets) else _advance(bucket_start, window)
        value = values.get(bucket_start)
        series.append(
            {
                "start": max(bucket_start, start),
                "end": min(bucket_end, end),
                "value": _number(value) if value is not None else empty,
            }
        )
    return series


def _advance(when: dt.datetime, window: str) -> dt.datetime:
    return _next_month(when) if window == "month" else when + _STEP[window]


def _buckets(start: dt.datetime, end: dt.datetime, window: str) -> list[dt.datetime]:
    if window == "month":
        first = month_start(start)
    elif window == "day":
        first = start.replace(hour=0)
    else:
        first = start
    buckets, current = [], first
    while current < end and len(buckets) <= MAX_BUCKETS:
        buckets.append(current)
        current = _advance(current, window)
    return buckets


def usage_total(*, meter: Meter, start: dt.datetime, end: dt.datetime, customer: str | None = None):
    """The meter's aggregate over [start, end) (whole hours), for a customer or the tenant."""
    totals = period_usage(customer=customer, meters=[meter], start=start, end=end)
    return totals.get(meter.pk)


def period_usage(
    *, customer: str | None, meters: list[Meter], start: dt.datetime, end: dt.datetime
) -> dict[int, int | float | None]:
    """Each meter's aggregate over [start, end) for one customer (None: the tenant), in at most two
    queries (the entitlement snapshot reads every metered feature's usage at once). Meters without
    usage are 0 (count, sum, unique_count) or None (min, max, latest)."""
    found = period_usage_many(
        customers=None if customer is None else [customer], meters=meters, start=start, end=end
    )
    empty = (Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT)
    return {m.pk: found.get((customer, m.pk), 0 if m.aggregation in empty else None) for m in meters}


_COLUMN = {
    Aggregation.COUNT: 0,
    Aggregation.SUM: 1,
    Aggregation.MAX: 2,
    Aggregation.MIN: 3,
    Aggregation.LATEST: 4,
}


def period_usage_many(
    *,
    customers: list[str] | None,
    meters: list[Meter],
    start: dt.datetime,
    end: dt.datetime,
    exact: bool = False,
) -> dict[tuple[str | None, int], int | float | Decimal | None]:
    """{(customer, meter id): aggregate} over [start, end) (whole hours) for many customers at once
    (None: the tenant's totals, keyed by customer None), in at most two queries; customers without
    usage are left out. `exact`: aggregates as Decimals (billing), not ints/floats (display)."""
    number = _exact if exact else _number
    start, end = _floor_hour(start), _ceil_hour(end)
    by_aggregation = [m for m in meters if m.aggregation != Aggregation.UNIQUE_COUNT]
    unique = [m for m in meters if m.aggregation == Aggregation.UNIQUE_COUNT]
    aggregation = {m.pk: m.aggregation for m in meters}
    if customers is None:  # the tenant: its own hourly totals, one row per hour
        who, group, params = "", "NULL::text", []
        source, source_params = "metering_rollup_tenant_all", []
    else:
        who, group, params = "AND customer = ANY(%s)", "customer", [customers]
        source, source_params = customer_rollup_sql(customers)
    result: dict[tuple[str | None, int], int | float | None] = {}
    with connection.cursor() as cursor:
        if by_aggregation:
            cursor.execute(
                f"SELECT {group}, meter_id, sum(count), sum(sum), max(max), min(min), "
                f"(array_agg(latest ORDER BY latest_ts DESC))[1] FROM {source} AS r "
                f"WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s GROUP BY 1, 2",
                [*source_params, [m.pk for m in by_aggregation], start, end],
            )
            for customer, meter_id, *values in cursor.fetchall():
                result[(customer, meter_id)] = number(values[_COLUMN[aggregation[meter_id]]])
        if unique:
            cursor.execute(
                f"SELECT {group}, meter_id, count(DISTINCT value) FROM metering_rollup_value "
                f"WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s {who} GROUP BY 1, 2",
                [[m.pk for m in unique], start, end, *params],
            )
            for customer, meter_id, value in cursor.fetchall():
                result[(customer, meter_id)] = value
    return result


def top_customers(*, meter: Meter, month: dt.datetime, limit: int = 10) -> list[tuple[str, object]]:
    """The customers with the most usage of `meter` in the calendar month starting at `month`
    (the monthly totals; distinct values for unique_count)."""
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        sql = ("SELECT customer, count(DISTINCT value) AS v FROM metering_rollup_value WHERE meter_id = %s "
               "AND hour >= %s AND hour < %s GROUP BY customer ORDER BY v DESC LIMIT %s")  # fmt: skip
        params = [meter.pk, month, month_end(month), limit]
    else:
        sql = (f"SELECT customer, {_aggregate_sql(meter.aggregation)} AS v FROM metering_rollup_month_all "
               "WHERE meter_id = %s AND month = %s GROUP BY customer ORDER BY v DESC NULLS LAST LIMIT %s")  # fmt: skip
        params = [meter.pk, month, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_UNREAD = object()


def current_period(*, customer, membership=_UNREAD) -> tuple[dt.datetime, dt.datetime]:
    """The customer's billing period now: its membership's current period, else the calendar
    month (UTC). Metered limits reset when it ends. `membership`: the customer's entitled
    membership (or None) when the caller has read it already (entitled_membership)."""
    from billing.memberships.selectors import entitled_membership

    now = timezone.now()
    if membership is _UNREAD:
        membership = entitled_membership(customer=customer)
    if (
        membership is not None
        and membership.current_period_start
        and membership.current_period_end
        and membership.current_period_start <= now < membership.current_period_end
    ):
        return membership.current_period_start, membership.current_period_end
    start = month_start(now)
    return start, _next_month(start)
