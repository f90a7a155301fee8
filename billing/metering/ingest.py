"""Usage event ingestion: the hot path behind `POST /api/v1/events`.

A batch is validated event by event (one bad event is rejected alone, with its index, a code and a
message), then written in ONE transaction, so the answer comes only after the accepted events are
committed and a killed request leaves the whole batch or none of it:

1. the ids are inserted into `metering_event_key` with `ON CONFLICT DO NOTHING RETURNING`: the ids it
   returns are new, the others were seen before (a replayed batch inserts nothing). Two batches racing
   on one id are decided by the primary key: the second waits for the first to commit, then skips it;
2. the new events are written with `COPY` into the month partitions of `metering_event`;
3. the batch's contribution to the hourly rollups of every meter its new events match is appended
   to `metering_rollup_delta`, one row per meter and hour holding every customer's share (distinct
   values of unique_count meters go to `metering_rollup_value`); `rollups.py` folds the deltas into
   the rollups after commit and says how reads stay exact before and after a fold.

Ids and distinct values are written in sorted order, so concurrent batches take their row locks in
the same order and do not deadlock; rollup deltas are appended, so batches never wait on each other
for them (upserting rollups directly made concurrent batches queue on the same hot rows). Meters are
read under a shared advisory lock that creating a meter takes exclusively (it then back-fills the
meter from raw events), so a meter never misses the events of a batch that was in flight when it was
created; they come from a per-process cache checked against the tenant's config version read after
that lock (ingest_config.py).

Rollups are by the hour of the event's own timestamp, so a late event lands in the period it belongs
to (the meter sync reports what it had not reported yet, by a received-at watermark).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.metering.ingest_config import VERSION_SQL, ingestion_config
from billing.metering.models import Meter
from billing.metering.rollups import TENANT_KEY, Deltas, deltas_append
from billing.metering.signals import snapshots_stale
from billing.metering.validation import _parse, _Reject, _Row, meter_contribution

# advisory lock class (int4) ordering meter creation against ingestion; the second key is the
# tenant's schema, so tenants never wait on each other
METER_LOCK = 70_413
# lists of ids travel to PostgreSQL as one string split by string_to_array on this character
# (validation refuses control characters in ids and customers): no per-element work in Python
SEP = "\x1f"
SPLIT = "string_to_array(%s, chr(31))"


@dataclass
class IngestResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"inserted": self.inserted, "duplicates": self.duplicates, "rejected": self.rejected}


# the month partitions known to exist, per tenant (schema and row: a tenant deleted and made again
# under the same schema name has a new row), in this process, as seen outside any transaction that
# could still roll them back; partitions are never dropped while their tenant lives
_partitions: dict[tuple[str, object], set[tuple[int, int]]] = {}


def _tenant_key() -> tuple[str, object] | None:
    pk = getattr(getattr(connection, "tenant", None), "pk", None)
    return None if pk is None else (connection.schema_name, pk)


def partitions_ensure(months: set[tuple[int, int]]) -> None:
    """Create the month partitions these events need (each in its own short transaction, before
    the batch's; concurrent creators of the same month are harmless)."""
    tenant = _tenant_key()
    if tenant is not None and months <= _partitions.get(tenant, set()):
        return
    known = partitions_known()
    for year, month in sorted(months - known):
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
        name = f"metering_event_p{year:04d}{month:02d}"
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF metering_event "
                    "FOR VALUES FROM (%s) TO (%s)",
                    [start, end],
                )
        except Exception:  # a concurrent creator won the race: the partition exists now
            if (year, month) not in partitions_known():
                raise
    if tenant is not None and not connection.in_atomic_block:  # only what is committed for good
        _partitions[tenant] = known | months


def partitions_known() -> set[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE p.relname = 'metering_event' AND n.nspname = current_schema()"
        )
        names = [row[0] for row in cursor.fetchall()]
    return {(int(name[-6:-2]), int(name[-2:])) for name in names if name[-6:].isdigit()}


def events_ingest(
    *, events: list, create_customers: bool = False, now: dt.datetime | None = None
) -> IngestResult:
    """Validate and store a batch of usage events exactly once; see the module docstring."""
    from billing.memberships.models import EXTERNAL_ID_PATTERN, Customer
    from billing.memberships.services import customer_upsert

    if len(events) > settings.METERING_MAX_BATCH:
        from billing.metering.exceptions import BatchTooLarge

        raise BatchTooLarge(
            f"At most {settings.METERING_MAX_BATCH} events per request.",
            details={"limit": settings.METERING_MAX_BATCH, "received": len(events)},
        )
    result = IngestResult()
    latest = (now or timezone.now()) + dt.timedelta(seconds=settings.METERING_MAX_FUTURE_SECONDS)
    rows: list[_Row] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        try:
            row = _parse(index, event, latest)
        except _Reject as exc:
            result.rejected.append({"index": index, "code": exc.code, "message": exc.message})
            continue
        if row.event_id in seen:  # the same id twice in one batch: the first one counts
            result.duplicates += 1
            continue
        seen.add(row.event_id)
        rows.append(row)
    if not rows:
        return result
    partitions_ensure({(row.ts.year, row.ts.month) for row in rows})

    cacheable = not connection.in_atomic_block  # nothing read here can be rolled back with a caller
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_xact_lock_shared(%s, {TENANT_KEY})", [METER_LOCK])
            # after the lock, so a meter created before it is seen; one round trip, the customer
            # ids as one delimited string
            cursor.execute(
                f"SELECT {VERSION_SQL}, (SELECT string_agg(external_id, chr(31)) FROM {Customer._meta.db_table} "
                f"WHERE external_id = ANY({SPLIT}))",
                [SEP.join({row.customer for row in rows})],
            )
            version, found = cursor.fetchone()
        known = set(found.split(SEP)) if found else set()
        meters, prices = ingestion_config(version=version, cacheable=cacheable)
        accepted: list[tuple[_Row, list]] = []
        for row in rows:
            contributions = []
            try:
                for spec in meters.get(row.type, ()):
                    amount = meter_contribution(spec, row)
                    if amount is not None:
                        contributions.append((spec, amount))
            except _Reject as exc:
                result.rejected.append({"index": row.index, "code": exc.code, "message": exc.message})
                continue
            accepted.append((row, contributions))

        unknown = {row.customer for row, _ in accepted} - known
        invalid: set[str] = set()
        if unknown and create_customers:  # made as the customers API would make them
            invalid = {c for c in unknown if not re.match(EXTERNAL_ID_PATTERN, c)}
            for external_id in sorted(unknown - invalid):
                customer_upsert(external_id=external_id)
            unknown = set()
        if unknown or invalid:
            kept = []
            for row, contributions in accepted:
                if row.customer in unknown:
                    code, message = "unknown_customer", f"No customer '{row.customer}'."
                elif row.customer in invalid:
                    code, message = "invalid_customer", f"'{row.customer}' is not a valid customer id."
                else:
                    kept.append((row, contributions))
                    continue
                result.rejected.append({"index": row.index, "code": code, "message": message})
            accepted = kept
        if accepted:
            new = _store(accepted, prices)
            result.inserted = len(new)
            result.duplicates += len(accepted) - len(new)
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _copy_text(value: str) -> str:
    """A string as a COPY text field: control characters were refused, so only backslashes."""
    return value.replace("\\", "\\\\") if "\\" in value else value


def _store(accepted: list[tuple[_Row, list]], prices) -> set[str]:
    """Write the new events and their rollup deltas; returns the ids that were new."""
    ids = sorted(row.event_id for row, _ in accepted)  # key order: concurrent batches lock alike
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH new AS (INSERT INTO metering_event_key (event_id) "
            f"SELECT unnest({SPLIT}) ON CONFLICT DO NOTHING RETURNING event_id) "
            "SELECT string_agg(event_id, chr(31)) FROM new",
            [SEP.join(ids)],
        )
        returned = cursor.fetchone()[0]
        if not returned:
            return set()
        new = set(returned.split(SEP))
        fresh = [(row, contributions) for row, contributions in accepted if row.event_id in new]
        lines = [
            f"{_copy_text(row.event_id)}\t{_copy_text(row.customer)}\t{_copy_text(row.type)}\t"
            f"{row.ts.isoformat()}\t{row.value}\t{_copy_text(row.properties_json)}\n"
            for row, _ in fresh
        ]
        with cursor.copy(
            "COPY metering_event (event_id, customer, type, ts, value, properties) FROM STDIN"
        ) as copy:
            copy.write("".join(lines))
    metered_customers = rollups_add(fresh)
    from billing.metering.credit_pricing import ai_usage_record
    from billing.metering.credits import credits_burn

    credits_burn(fresh=fresh, prices=prices)  # synchronous, in this transaction: only new events burn
    ai_usage_record(fresh=fresh, prices=prices)
    if metered_customers:
        # metered limits are judged on this period's usage: the snapshots must be rebuilt
        snapshots_stale.send(sender=Meter, customers=metered_customers)
    return new


def rollups_add(fresh: list[tuple[_Row, list]]) -> set[str]:
    """Append these events' contributions to the rollup deltas (see rollups.py); returns the
    customers whose metered-feature usage moved."""
    deltas = Deltas()
    metered_customers: set[str] = set()
    add = deltas.add
    for row, contributions in fresh:
        if not contributions:
            continue
        hour = row.ts.replace(minute=0, second=0, microsecond=0)
        for spec, amount in contributions:
            if spec.metered_feature:
                metered_customers.add(row.customer)
            add(spec, row.customer, hour, row.ts, amount)
    deltas_append(deltas)
    return metered_customers
