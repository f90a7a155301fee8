"""Writes of the metering app: meters (with their back-fill) and partition upkeep."""

from __future__ import annotations

import datetime as dt
import re

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.metering.exceptions import InvalidMeter
from billing.metering.ingest import METER_LOCK, partitions_ensure
from billing.metering.models import Aggregation, Meter
from billing.metering.rollups import TENANT_KEY

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _validate(*, code: str, event_type: str, aggregation: str, value_property: str, filters: dict) -> None:
    if not CODE.match(code or ""):
        raise InvalidMeter(
            "A meter code is 1-64 lowercase letters, digits, '-' or '_'.", details={"field": "code"}
        )
    if not event_type or len(event_type) > 100:
        raise InvalidMeter(
            "'event_type' is required (at most 100 characters).", details={"field": "event_type"}
        )
    if aggregation not in Aggregation.values:
        raise InvalidMeter(
            f"'aggregation' is one of {', '.join(Aggregation.values)}.", details={"field": "aggregation"}
        )
    if aggregation == Aggregation.UNIQUE_COUNT and not value_property:
        raise InvalidMeter("A unique_count meter names the property whose distinct values it counts.",
                           details={"field": "value_property"})  # fmt: skip
    if not isinstance(filters, dict) or not all(
        isinstance(v, str | int | float | bool) or (isinstance(v, list) and v) for v in filters.values()
    ):
        raise InvalidMeter(
            "'filters' maps a property to a value or a non-empty list of values.",
            details={"field": "filters"},
        )


def meter_create(
    *,
    code: str,
    name: str = "",
    event_type: str,
    aggregation: str,
    value_property: str = "",
    filters: dict | None = None,
    allow_negative: bool = False,
    unit: str = "",
    feature_code: str | None = None,
) -> Meter:
    """Create a meter and aggregate the raw events it matches that were already stored.

    Takes the ingestion lock exclusively: batches in flight commit first (the back-fill then sees
    them), batches that start later wait and then see the new meter, so no event is missed or
    counted twice."""
    from billing.tiers.models import Feature, FeatureKind

    filters = filters or {}
    _validate(
        code=code,
        event_type=event_type,
        aggregation=aggregation,
        value_property=value_property,
        filters=filters,
    )
    feature = None
    if feature_code:
        feature = Feature.objects.filter(code=feature_code).first()
        if feature is None or feature.kind != FeatureKind.METERED:
            raise InvalidMeter(f"No metered feature '{feature_code}'.", details={"field": "feature"})
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_xact_lock(%s, {TENANT_KEY})", [METER_LOCK])
        try:
            with transaction.atomic():
                meter = Meter.objects.create(
                    code=code, name=name or code, event_type=event_type, aggregation=aggregation,
                    value_property=value_property, filters=filters, allow_negative=allow_negative, unit=unit,
                    feature=feature,
                )  # fmt: skip
        except IntegrityError:
            raise InvalidMeter(
                f"A meter '{code}' exists already, or feature '{feature_code}' has a meter.",
                code="meter_exists",
            ) from None
        meter_reaggregate(meter=meter)
    return meter


def meter_reaggregate(*, meter: Meter, batch: int = 50_000) -> int:
    """Rebuild a meter's rollups from raw events (a new meter, or a repair). Events the meter
    cannot take (a missing or negative value) are skipped, as ingestion would have refused them
    for this meter. Returns the number of events aggregated."""
    from billing.metering.validation import meters_by_type

    spec = next(s for s in meters_by_type().get(meter.event_type, []) if s.id == meter.pk)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM metering_rollup WHERE meter_id = %s", [meter.pk])
        cursor.execute("DELETE FROM metering_rollup_delta WHERE meter_id = %s", [meter.pk])
        cursor.execute("DELETE FROM metering_rollup_tenant WHERE meter_id = %s", [meter.pk])
        cursor.execute("DELETE FROM metering_rollup_month WHERE meter_id = %s", [meter.pk])
        cursor.execute("DELETE FROM metering_rollup_value WHERE meter_id = %s", [meter.pk])
    total = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, customer, type, ts, value, properties::text FROM metering_event WHERE type = %s ORDER BY ts",
            [meter.event_type],
        )
        while chunk := cursor.fetchmany(batch):
            total += _aggregate_rows(spec, chunk)
    return total


def _aggregate_rows(spec, chunk) -> int:
    from billing.metering.ingest import rollups_add
    from billing.metering.validation import _Reject, _Row, meter_contribution

    accepted = []
    for event_id, customer, type_, ts, value, properties in chunk:
        properties = orjson.loads(properties)  # read as text: meters look into it as ingestion does
        row = _Row(
            index=0,
            event_id=event_id,
            customer=customer,
            type=type_,
            ts=ts,
            value=value,
            properties=properties,
        )
        try:
            amount = meter_contribution(spec, row)
        except _Reject:
            continue
        if amount is not None:
            accepted.append((row, [(spec, amount)]))
    rollups_add(accepted)
    return len(accepted)


def partitions_ahead(*, months: int = 2, now: dt.datetime | None = None) -> None:
    """Create this month's and the next months' partitions ahead of ingestion (beat, daily)."""
    now = now or timezone.now()
    wanted = set()
    year, month = now.year, now.month
    for _ in range(months + 1):
        wanted.add((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    partitions_ensure(wanted)
