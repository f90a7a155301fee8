"""Checking usage events one by one, and what each adds to the meters it matches.

An event that fails a check is rejected alone (`_Reject` carries the code and message the API
answers with); the checks are written out by hand rather than with a serializer because ingestion
runs them on thousands of events per request.

Numbers stay Python ints when they are ints (exact, and cheaper than Decimal); a float becomes the
Decimal of its shortest repr, so 0.1 is 0.1, not 0.1000000000000000055…. Strings that become keys
(id, customer, type) may not hold control characters: PostgreSQL cannot store NUL, and these
strings travel in COPY text and delimited lists where tab, newline and \\x1f are separators.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import orjson
from django.conf import settings

from billing.metering.models import Aggregation, Meter
from kernel.api.jsonbody import holds_nul
from kernel.timestamps import TimestampError, timestamp_parse

MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 100
MAX_VALUE = 10**20  # numeric(38, 9) holds 29 integer digits; far beyond any usage
OLDEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Reject(Exception):
    def __init__(self, code: str, message: str):
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class MeterSpec:
    id: int
    code: str
    aggregation: str
    value_property: str
    filters: tuple[tuple[str, frozenset], ...]
    allow_negative: bool
    metered_feature: bool


@dataclass(slots=True)
class _Row:
    index: int
    event_id: str
    customer: str
    type: str
    ts: dt.datetime
    value: int | Decimal
    properties: dict
    properties_json: str = ""  # the properties as stored (orjson), set by _parse


def _number(value, what: str) -> int | Decimal:
    kind = type(value)
    if kind is int:
        if -MAX_VALUE < value < MAX_VALUE:
            return value
        raise _Reject("value_out_of_range", f"{what} is out of range.")
    if kind is not float:
        raise _Reject("invalid_value", f"{what} must be a number.")
    if not math.isfinite(value):
        raise _Reject("invalid_value", f"{what} must be a finite number.")
    if not -MAX_VALUE < value < MAX_VALUE:
        raise _Reject("value_out_of_range", f"{what} is out of range.")
    return Decimal(repr(value))


def _text(event: dict, key: str, limit: int) -> str:
    value = event.get(key)
    if type(value) is not str or not value:
        raise _Reject(f"invalid_{key}", f"'{key}' must be a non-empty string.")
    if len(value) > limit:
        raise _Reject(f"invalid_{key}", f"'{key}' is longer than {limit} characters.")
    if not value.isprintable() and _CONTROL.search(value):  # isprintable: a fast pass for the usual case
        raise _Reject(f"invalid_{key}", f"'{key}' may not contain control characters.")
    return value


def _timestamp(value, latest: dt.datetime) -> dt.datetime:
    if type(value) is not str:
        raise _Reject("invalid_timestamp", "'timestamp' must be an RFC 3339 string.")
    try:
        when = timestamp_parse(value)
    except TimestampError as exc:
        raise _Reject("invalid_timestamp", f"'timestamp': {exc.message}") from None
    if when > latest:
        raise _Reject(
            "timestamp_in_future",
            f"'timestamp' is more than {settings.METERING_MAX_FUTURE_SECONDS} s ahead of the server's clock.",
        )
    if when < OLDEST:
        raise _Reject("timestamp_too_old", "'timestamp' is before 2000.")
    return when


def _parse(index: int, event, latest: dt.datetime) -> _Row:
    if type(event) is not dict:
        raise _Reject("invalid_event", "An event must be a JSON object.")
    properties = event.get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        raise _Reject("invalid_properties", "'properties' must be an object.")
    try:
        stored = orjson.dumps(properties).decode()
    except TypeError:  # an integer beyond 64 bits, kept exact by the parser: jsonb stores it exactly
        stored = json.dumps(properties, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in stored and holds_nul(properties):  # jsonb cannot hold NUL
        raise _Reject("invalid_properties", "'properties' may not contain the NUL character.")
    value = event.get("value", 1)
    return _Row(
        index,
        _text(event, "id", MAX_ID_LENGTH),
        _text(event, "customer", MAX_ID_LENGTH),
        _text(event, "type", MAX_TYPE_LENGTH),
        _timestamp(event.get("timestamp"), latest),
        _number(value, "'value'"),
        properties,
        stored,
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


def meter_contribution(spec: MeterSpec, row) -> int | Decimal | str | None:
    """What one event adds to a meter: a number, a distinct value (unique_count), or None when the
    meter does not count it. Raises _Reject for an event the meter cannot take."""
    if spec.filters and not _matches(spec, row.properties):
        return None
    aggregation = spec.aggregation
    if aggregation == Aggregation.COUNT:
        return 1
    if aggregation == Aggregation.UNIQUE_COUNT:
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
