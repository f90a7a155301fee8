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
read under a shared advisory lock that creating a meter takes exclusively (it then back-fills the meter from raw events), so a meter never misses the
events of a batch that was in flight when it was created.

Rollups are by the hour of the event's own timestamp, so a late event lands in the period it belongs
to (the meter sync reports what it had not reported yet, by a received-at watermark).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.metering.models import Aggregation, Meter
from billing.metering.rollups import TENANT_KEY, Deltas, deltas_append

# advisory lock class (int4) ordering meter creation against ingestion; the second key is the
# tenant's schema, so tenants never wait on each other
METER_LOCK = 70_413
MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 100
MAX_VALUE = Decimal("1e20")  # numeric(38, 9) holds 29 integer digits; far beyond any usage
OLDEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass
class IngestResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"inserted": self.inserted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(frozen=True, slots=True)
class MeterSpec:
    id: int
    code: str
    aggregation: str
    value_property: str
    filters: tuple[tuple[str, frozenset], ...]
    allow_negative: bool
    metered_feature: bool


class _Reject(Exception):
    def __init__(self, code: str, message: str):
        self.code, self.message = code, message


def _number(value, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject("invalid_value", f"{what} must be a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Reject("invalid_value", f"{what} must be a finite number.")
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if abs(number) >= MAX_VALUE:
        raise _Reject("value_out_of_range", f"{what} is out of range.")
    return number


def _text(event: dict, key: str, limit: int) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise _Reject(f"invalid_{key}", f"'{key}' must be a non-empty string.")
    if len(value) > limit:
        raise _Reject(f"invalid_{key}", f"'{key}' is longer than {limit} characters.")
    return value


def _timestamp(value, latest: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise _Reject("invalid_timestamp", "'timestamp' must be an RFC 3339 string.")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Reject("invalid_timestamp", f"'{value[:40]}' is not an RFC 3339 timestamp.") from None
    if when.tzinfo is None:
        raise _Reject("invalid_timestamp", "'timestamp' needs a time zone offset (e.g. Z).")
    when = when.astimezone(dt.UTC)
    if when > latest:
        raise _Reject(
            "timestamp_in_future",
            f"'timestamp' is more than {settings.METERING_MAX_FUTURE_SECONDS} s ahead of the server's clock.",
        )
    if when < OLDEST:
        raise _Reject("timestamp_too_old", "'timestamp' is before 2000.")
    return when


@dataclass(slots=True)
class _Row:
    index: int
    event_id: str
    customer: str
    type: str
    ts: dt.datetime
    value: Decimal
    properties: dict


def _parse(index: int, event, latest: dt.datetime) -> _Row:
    if not isinstance(event, dict):
        raise _Reject("invalid_event", "An event must be a JSON object.")
    properties = event.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise _Reject("invalid_properties", "'properties' must be an object.")
    value = event.get("value", 1)
    return _Row(
        index=index,
        event_id=_text(event, "id", MAX_ID_LENGTH),
        customer=_text(event, "customer", MAX_ID_LENGTH),
        type=_text(event, "type", MAX_TYPE_LENGTH),
        ts=_timestamp(event.get("timestamp"), latest),
        value=_number(value, "'value'"),
        properties=properties,
    )


def meters_by_type() -> dict[str, list[MeterSpec]]:
    by_type: dict[str, list[MeterSpec]] = defaultdict(list)
    for meter in Meter.objects.filter(active=True).values(
        "id", "code", "event_type", "aggregation", "value_property", "filters", "allow_negative", "feature_id"
    ):
        filters = tuple(
            (key, frozenset(json.dumps(v) for v in (wanted if isinstance(wanted, list) else [wanted])))
            for key, wanted in sorted((meter["filters"] or {}).items())
        )
        by_type[meter["event_type"]].append(
            MeterSpec(
                id=meter["id"],
                code=meter["code"],
                aggregation=meter["aggregation"],
                value_property=meter["value_property"],
                filters=filters,
                allow_negative=meter["allow_negative"],
                metered_feature=meter["feature_id"] is not None,
            )
        )
    return by_type


def _matches(spec: MeterSpec, properties: dict) -> bool:
    for key, wanted in spec.filters:
        if key not in properties or json.dumps(properties[key]) not in wanted:
            return False
    return True


def meter_contribution(spec: MeterSpec, row) -> Decimal | str | None:
    """What one event adds to a meter: a number, a distinct value (unique_count), or None when the
    meter does not count it. Raises _Reject for an event the meter cannot take."""
    if spec.filters and not _matches(spec, row.properties):
        return None
    if spec.aggregation == Aggregation.COUNT:
        return Decimal(1)
    if spec.aggregation == Aggregation.UNIQUE_COUNT:
        prop = spec.value_property
        raw = row.properties.get(prop)
        if isinstance(raw, bool) or not isinstance(raw, str | int | float) or raw == "":
            raise _Reject("missing_property", f"Meter '{spec.code}' counts distinct '{prop}': give it as a string or number.")  # fmt: skip
        return str(raw)[:255]
    if spec.value_property:
        if spec.value_property not in row.properties:
            raise _Reject("missing_property", f"Meter '{spec.code}' needs the number property '{spec.value_property}'.")  # fmt: skip
        number = _number(row.properties[spec.value_property], f"'properties.{spec.value_property}'")
    else:
        number = row.value
    if number < 0 and not spec.allow_negative:
        raise _Reject("negative_value", f"Meter '{spec.code}' does not take negative values.")
    return number


def partitions_ensure(months: set[tuple[int, int]]) -> None:
    """Create the month partitions these events need (each in its own short transaction, before
    the batch's; concurrent creators of the same month are harmless)."""
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
    from billing.memberships.models import Customer
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

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_xact_lock_shared(%s, {TENANT_KEY})", [METER_LOCK])
        meters = meters_by_type()
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

        customers = {row.customer for row, _ in accepted}
        with _binding_cursor() as cursor:  # one round trip, the ids bound as one binary array
            cursor.execute(
                f"SELECT external_id FROM {Customer._meta.db_table} WHERE external_id = ANY(%b::text[])",
                [sorted(customers)],
            )
            known = {r[0] for r in cursor.fetchall()}
        unknown = customers - known
        if unknown and create_customers:
            for external_id in sorted(unknown):
                customer_upsert(external_id=external_id)
            unknown = set()
        if unknown:
            kept = []
            for row, contributions in accepted:
                if row.customer in unknown:
                    result.rejected.append(
                        {
                            "index": row.index,
                            "code": "unknown_customer",
                            "message": f"No customer '{row.customer}'.",
                        }
                    )
                else:
                    kept.append((row, contributions))
            accepted = kept
        if accepted:
            new = _store(accepted)
            result.inserted = len(new)
            result.duplicates += len(accepted) - len(new)
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _binding_cursor():
    """A psycopg cursor with server-side binding on Django's connection (same transaction): Django's
    own cursors bind client-side, quoting every array element as text; here the big arrays travel
    in binary (%b), several times faster to send."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _store(accepted: list[tuple[_Row, list]]) -> set[str]:
    """Write the new events and their rollup deltas; returns the ids that were new."""
    ids = sorted(row.event_id for row, _ in accepted)
    with _binding_cursor() as cursor:
        cursor.execute(
            "INSERT INTO metering_event_key (event_id) SELECT unnest(%b::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            [ids],
        )
        new = {r[0] for r in cursor.fetchall()}
        if not new:
            return new
        fresh = [(row, contributions) for row, contributions in accepted if row.event_id in new]
        with cursor.copy(
            "COPY metering_event (event_id, customer, type, ts, value, properties) FROM STDIN"
        ) as copy:
            for row, _ in fresh:
                copy.write_row(
                    (
                        row.event_id,
                        row.customer,
                        row.type,
                        row.ts,
                        row.value,
                        orjson.dumps(row.properties).decode(),
                    )
                )
    metered_customers = rollups_add(fresh)
    from billing.metering.credits import ai_usage_record, credits_burn, prices_load

    prices = prices_load()  # once per batch: burning and the AI cost rollup both price events
    credits_burn(fresh=fresh, prices=prices)  # synchronous, in this transaction: only new events burn
    ai_usage_record(fresh=fresh, prices=prices)
    if metered_customers:
        from billing.entitlements import cache

        # metered limits are judged on this period's usage: the snapshots must be rebuilt
        cache.invalidate_many(metered_customers)
        transaction.on_commit(lambda: cache.invalidate_many(metered_customers))
    return new


def rollups_add(fresh: list[tuple[_Row, list]]) -> set[str]:
    """Append these events' contributions to the rollup deltas (see rollups.py); returns the
    customers whose metered-feature usage moved."""
    deltas = Deltas()
    metered_customers: set[str] = set()
    for row, contributions in fresh:
        for spec, amount in contributions:
            if spec.metered_feature:
                metered_customers.add(row.customer)
            deltas.add(spec, row.customer, row.ts, amount)
    deltas_append(deltas)
    return metered_customers
