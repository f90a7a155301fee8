"""What ingestion applies to a batch, its meters and prices, cached per process and tenant.

Loading them costs three queries and their ORM work on every batch (most of a single event's
request). They change rarely, and every change to meters, burn rates or AI prices increments the
tenant's `ConfigVersion` (database triggers), so ingestion reads that one number (in a query it
makes anyway) and reloads only when it moved. Only definitions read outside any enclosing
transaction are kept: one that could still roll back must not outlive it.
"""

from __future__ import annotations

from django.db import connection

from billing.metering.validation import MeterSpec, meters_by_type

_cache: dict[tuple[str, object], tuple[int, dict[str, list[MeterSpec]], object]] = {}

VERSION_SQL = "(SELECT version FROM metering_config_version)"


def ingestion_config(*, version: int | None, cacheable: bool) -> tuple[dict[str, list[MeterSpec]], object]:
    """(meters by event type, prices) at `version`: from the cache when it holds that version."""
    from billing.metering.credit_pricing import prices_load

    key = (connection.schema_name, getattr(getattr(connection, "tenant", None), "pk", None))
    cached = _cache.get(key)
    if version is not None and cached is not None and cached[0] == version:
        return cached[1], cached[2]
    meters, prices = meters_by_type(), prices_load()
    if cacheable and version is not None and key[1] is not None:
        _cache[key] = (version, meters, prices)
    return meters, prices
