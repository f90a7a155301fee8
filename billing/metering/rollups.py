"""Hourly rollups: what ingestion adds to them, how the adds are folded in, and how reads see both.

Ingestion never updates a rollup row (concurrent batches would queue on the same hot rows). It
appends, in its own transaction, ONE row per meter and hour to `metering_rollup_delta`, holding the
batch's contribution for every customer at once as parallel arrays (`customers[i]` used the meter
`counts[i]` times, summing to `sums[i]`, …) plus the batch's total over those customers. A batch of
1,000 events spread over 600 customers writes two rows for two meters, not 1,200: the rows, their
index entries and the fold's per-row work were most of ingestion's database time.

`rollups_fold` moves the committed delta rows into `metering_rollup` (per meter, customer and hour),
`metering_rollup_tenant` (per meter and hour) and `metering_rollup_month` (per meter, customer and
calendar month) in one statement: it deletes the delta rows its snapshot sees and adds them up, so a
delta is always in exactly one place for any reader. Only folds write the rollups, one at a time per
tenant (an advisory lock), so their rows need no locking order. After a batch commits, the tenant's
deltas are folded if no fold ran in the last second (in any process); beat folds quiet tenants.

Reads add the deltas not folded yet: `metering_rollup_all` (and `_tenant_all`, `_month_all`) are
the union of the rollups and the unnested deltas; `customer_rollup_sql` reads a few customers'
rows without unnesting every pending delta (it finds each customer's index with array_position).

Columns a meter's aggregation never reads are not carried: `sums` is NULL for count and
unique_count meters (the sum of ones is the count), min/max/latest only for those aggregations.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import connection, transaction

from billing.metering.models import Aggregation

logger = logging.getLogger(__name__)

# advisory lock class (int4) of the fold; the second key is the tenant's schema
FOLD_LOCK = 70_414
TENANT_KEY = "hashtext(current_schema())"
FOLD_EVERY_SECONDS = 1.0
FEW_CUSTOMERS = 32  # up to this many, reads find customers in the deltas by array_position
VACUUM_AFTER_ROWS = 2_000  # dead delta rows (a few hundred pages) before the queue is vacuumed

_COUNTED = (Aggregation.COUNT, Aggregation.UNIQUE_COUNT)  # amounts are all 1: no sums carried


class Deltas:
    """One batch's contributions, per (meter, hour) and customer: [count, sum, extreme, extreme_ts]
    where the extreme is the min, the max or the latest value (with its timestamp), as the
    meter's aggregation needs."""

    __slots__ = ("cells", "distinct", "aggregation")

    def __init__(self) -> None:
        self.cells: dict[tuple[int, dt.datetime], dict[str, list]] = {}
        self.distinct: set[tuple] = set()  # (meter, customer, hour, value) of unique_count meters
        self.aggregation: dict[int, str] = {}

    def add(self, spec, customer: str, hour: dt.datetime, ts: dt.datetime, amount) -> None:
        aggregation = spec.aggregation
        if aggregation == Aggregation.UNIQUE_COUNT:
            self.distinct.add((spec.id, customer, hour, amount))
            amount = 1
        key = (spec.id, hour)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = {}
            self.aggregation[spec.id] = aggregation
        acc = cell.get(customer)
        if acc is None:
            cell[customer] = [1, amount, amount, ts]
            return
        acc[0] += 1
        acc[1] += amount
        if aggregation == Aggregation.MIN:
            if amount < acc[2]:
                acc[2] = amount
        elif aggregation == Aggregation.MAX:
            if amount > acc[2]:
                acc[2] = amount
        elif aggregation == Aggregation.LATEST and ts >= acc[3]:
            acc[2], acc[3] = amount, ts

    def rows(self) -> list[tuple]:
        """The delta rows to append: (meter_id, hour, customers, counts, sums, mins, maxs, latests,
        latest_tss, and the batch's totals over those customers: count, sum, min, max, latest,
        latest_ts)."""
        rows = []
        for (meter_id, hour), cell in sorted(self.cells.items(), key=lambda item: item[0]):
            aggregation = self.aggregation[meter_id]
            customers = list(cell)
            accs = list(cell.values())
            counts = [acc[0] for acc in accs]
            total_count = sum(counts)
            sums = mins = maxs = latests = latest_tss = None
            total_sum = total_count
            total_min = total_max = total_latest = total_latest_ts = None
            if aggregation not in _COUNTED:
                sums = [acc[1] for acc in accs]
                total_sum = sum(sums)
            if aggregation == Aggregation.MIN:
                mins = [acc[2] for acc in accs]
                total_min = min(mins)
            elif aggregation == Aggregation.MAX:
                maxs = [acc[2] for acc in accs]
                total_max = max(maxs)
            elif aggregation == Aggregation.LATEST:
                latests = [acc[2] for acc in accs]
                latest_tss = [acc[3] for acc in accs]
                last = max(range(len(accs)), key=lambda i: latest_tss[i])
                total_latest, total_latest_ts = latests[last], latest_tss[last]
            rows.append((meter_id, hour, customers, counts, sums, mins, maxs, latests, latest_tss,
                         total_count, total_sum, total_min, total_max, total_latest, total_latest_ts))  # fmt: skip
        return rows


_DELTA_COLUMNS = (
    "meter_id, hour, customers, counts, sums, mins, maxs, latests, latest_tss, "
    "total_count, total_sum, total_min, total_max, total_latest, total_latest_ts"
)


def _array(values) -> str:
    """A list of numbers or timestamps as a PostgreSQL array literal, in COPY text (\\N for none)."""
    if values is None:
        return "\\N"
    return "{" + ",".join(v.isoformat() if isinstance(v, dt.datetime) else str(v) for v in values) + "}"


def _text_array(values: list[str]) -> str:
    """Strings as a quoted array literal, in COPY text. Ids and customers hold no control
    characters (validation), so only quotes and backslashes need escaping."""
    joined = '","'.join(values)
    if "\\" in joined or '"' in joined:
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
        joined = joined.replace("\\", "\\\\")  # and COPY's own escaping of the backslashes
    return '{"' + joined + '"}'


def _scalar(value) -> str:
    if value is None:
        return "\\N"
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def deltas_append(deltas: Deltas) -> None:
    """Append a batch's deltas (and its distinct values) inside the caller's transaction, and
    fold soon after it commits."""
    import psycopg

    rows = deltas.rows()
    if rows:
        lines = []
        for meter_id, hour, customers, *arrays, count, total, low, high, last, last_ts in rows:
            fields = [str(meter_id), hour.isoformat(), _text_array(customers), *map(_array, arrays),
                      str(count), str(total), _scalar(low), _scalar(high), _scalar(last), _scalar(last_ts)]  # fmt: skip
            lines.append("\t".join(fields) + "\n")
        with connection.cursor() as cursor, cursor.copy(f"COPY metering_rollup_delta ({_DELTA_COLUMNS}) FROM STDIN") as copy:  # fmt: skip
            copy.write("".join(lines))
        transaction.on_commit(rollups_fold_soon)
    if deltas.distinct:
        connection.ensure_connection()
        # server-side binding on Django's connection (same transaction): the arrays travel in binary
        with psycopg.Cursor(connection.connection) as cursor:
            columns = list(zip(*sorted(deltas.distinct), strict=True))
            cursor.execute(
                "INSERT INTO metering_rollup_value (meter_id, customer, hour, value) "
                "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[], %b::text[]) ON CONFLICT DO NOTHING",
                [list(column) for column in columns],
            )


_last_fold: dict[str, float] = {}  # per tenant schema, in this process
_folded: dict[str, int] = {}  # delta rows folded (dead in the queue) since its last VACUUM, per schema


def _fold_due(schema: str) -> bool:
    """At most one fold a second per tenant: across processes through a Redis key that expires
    (each fold's cost grows with the distinct rollup rows it touches, so two workers folding half
    as much each cost nearly twice one fold), else per process when Redis is down."""
    from kernel.redis import REDIS_ERRORS, get_redis, key_prefix, trip

    now = time.monotonic()
    if now - _last_fold.get(schema, 0.0) < FOLD_EVERY_SECONDS:
        return False
    _last_fold[schema] = now
    try:
        key = f"{key_prefix()}:{schema}:fold"
        return bool(get_redis().set(key, 1, nx=True, px=int(FOLD_EVERY_SECONDS * 1000)))
    except REDIS_ERRORS as exc:
        trip(exc)
        return True


def rollups_fold_soon() -> None:
    """After a batch commits: fold this tenant's deltas unless a fold ran within the last second
    (the fold's cost is shared by all batches since; reads are exact either way)."""
    if not _fold_due(connection.schema_name):
        return
    try:
        rollups_fold()
        rollups_vacuum_if_due()
    except Exception:  # a fold that fails leaves the deltas where they are: the next one takes them
        logger.exception("rollup fold failed")


def _merge(table: str) -> str:
    """The ON CONFLICT clause that adds a rollup row into `table`'s existing one."""
    return f"""DO UPDATE SET
        count = {table}.count + EXCLUDED.count,
        sum = {table}.sum + EXCLUDED.sum,
        min = LEAST({table}.min, EXCLUDED.min),
        max = GREATEST({table}.max, EXCLUDED.max),
        latest = CASE WHEN {table}.latest_ts IS NULL OR EXCLUDED.latest_ts >= {table}.latest_ts
                      THEN EXCLUDED.latest ELSE {table}.latest END,
        latest_ts = GREATEST({table}.latest_ts, EXCLUDED.latest_ts)"""


# adds up rollup-shaped rows; the latest value is looked for only where a latest meter left one
ADD_UP = (
    "sum(count), sum(sum), min(min), max(max), "
    "(array_agg(latest ORDER BY latest_ts DESC) FILTER (WHERE latest_ts IS NOT NULL))[1], max(latest_ts)"
)
_MONTH = "date_trunc('month', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# the per-customer cells of delta rows `d`, shaped like rollup rows
DELTA_CELLS = (
    "SELECT d.meter_id, u.customer, d.hour, u.count, coalesce(u.sum, u.count) AS sum, u.min, u.max, u.latest, "
    "u.latest_ts FROM {source} d, unnest(d.customers, d.counts, d.sums, d.mins, d.maxs, d.latests, d.latest_tss) "
    "AS u(customer, count, sum, min, max, latest, latest_ts)"
)


def rollups_fold() -> int:
    """Move every committed delta into the rollups, exactly once: one statement deletes the delta
    rows its snapshot sees and adds them up into the hourly rollups per customer, the tenant's
    hourly totals and the customers' monthly totals (from the hourly sums), so for any reader a delta is
    either still in the delta table or in the rollups, never both. One fold at a time per tenant
    (a second one returns at once). Returns the number of hourly rollup rows touched."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_xact_lock(%s, {TENANT_KEY})", [FOLD_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        # the planner's row estimates for a queue table are stale by nature: compiling the statement
        # with LLVM cost more than running it, and the cells must be hashed in memory, not sorted
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            f"""
            WITH moved AS (DELETE FROM metering_rollup_delta RETURNING *),
            cells AS ({DELTA_CELLS.format(source="moved")}),
            sums AS (
                SELECT meter_id, customer, hour, sum(count) AS count, sum(sum) AS sum, min(min) AS min,
                       max(max) AS max, max(latest_ts) AS latest_ts
                FROM cells GROUP BY meter_id, customer, hour
            ),
            last AS (
                SELECT DISTINCT ON (meter_id, customer, hour) meter_id, customer, hour, latest FROM cells
                WHERE latest_ts IS NOT NULL ORDER BY meter_id, customer, hour, latest_ts DESC
            ),
            added AS MATERIALIZED (
                SELECT s.meter_id, s.customer, s.hour, s.count, s.sum, s.min, s.max, l.latest, s.latest_ts
                FROM sums s LEFT JOIN last l USING (meter_id, customer, hour)
            ),
            hourly AS (
                INSERT INTO metering_rollup (meter_id, customer, hour, count, sum, min, max, latest, latest_ts)
                SELECT * FROM added
                ON CONFLICT (meter_id, customer, hour) {_merge("metering_rollup")}
                RETURNING 1
            ),
            tenant AS (
                INSERT INTO metering_rollup_tenant (meter_id, hour, count, sum, min, max, latest, latest_ts)
                SELECT meter_id, hour, sum(total_count), sum(total_sum), min(total_min), max(total_max),
                       (array_agg(total_latest ORDER BY total_latest_ts DESC)
                        FILTER (WHERE total_latest_ts IS NOT NULL))[1], max(total_latest_ts)
                FROM moved GROUP BY meter_id, hour
                ON CONFLICT (meter_id, hour) {_merge("metering_rollup_tenant")}
            ),
            monthly AS (
                INSERT INTO metering_rollup_month (meter_id, customer, month, count, sum, min, max, latest, latest_ts)
                SELECT meter_id, customer, {_MONTH} AS month, {ADD_UP} FROM added GROUP BY meter_id, customer, month
                ON CONFLICT (meter_id, month, customer) {_merge("metering_rollup_month")}
            )
            SELECT (SELECT count(*) FROM hourly), (SELECT count(*) FROM moved)
            """
        )
        touched, moved = cursor.fetchone()
    _folded[connection.schema_name] = _folded.get(connection.schema_name, 0) + moved
    return touched


def rollups_vacuum_if_due() -> bool:
    """VACUUM the delta queue once enough folded rows lie dead in it. Folds delete every row they
    take, and readers scan the queue: left to autovacuum (which may be slow to come, or off), the
    dead rows of a busy hour made every usage read ~40 ms slower. Needs autocommit (VACUUM cannot
    run in a transaction): called after a fold, outside any atomic block."""
    schema = connection.schema_name
    if _folded.get(schema, 0) < VACUUM_AFTER_ROWS or connection.in_atomic_block:
        return False
    _folded[schema] = 0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (SKIP_LOCKED) metering_rollup_delta")
    return True


def customer_rollup_sql(customers: list[str]) -> tuple[str, list]:
    """A FROM-able subquery of the rollup-shaped rows (folded and not) of these customers, with
    its parameters. For a few customers the pending deltas are searched with array_position (no
    unnesting of every customer's cells); for many, the deltas are unnested once and filtered."""
    if len(customers) > FEW_CUSTOMERS:
        return "(SELECT * FROM metering_rollup_all WHERE customer = ANY(%s))", [customers]
    return (
        "(SELECT meter_id, customer, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup "
        "WHERE customer = ANY(%s) "
        "UNION ALL "
        "SELECT d.meter_id, c.customer, d.hour, d.counts[p.i], coalesce(d.sums[p.i], d.counts[p.i]), d.mins[p.i], "
        "d.maxs[p.i], d.latests[p.i], d.latest_tss[p.i] FROM metering_rollup_delta d "
        "CROSS JOIN unnest(%s::text[]) AS c(customer) "
        "CROSS JOIN LATERAL (SELECT array_position(d.customers, c.customer) AS i) AS p WHERE p.i IS NOT NULL)",
        [customers, customers],
    )
