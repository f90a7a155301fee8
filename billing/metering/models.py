"""Usage metering: meters, raw usage events (partitioned by month), hourly rollups.

Raw events live in `metering_event`, a PostgreSQL table partitioned by month of the event's
timestamp (created by raw SQL in the migration; `UsageEvent` is an unmanaged model over it).
A partitioned table's unique keys must include the partition key, so exact de-duplication by the
integrator's event id is done by `metering_event_key` (one row per id ever accepted): an event is
stored only when its key row is new, in the same transaction.
"""

import pgtrigger
from django.db import models
from django.db.models import Q


def bumps_config_version(name: str) -> pgtrigger.Trigger:
    """A statement trigger that increments the tenant's `ConfigVersion` after any change to the
    table it is on (ingestion caches meters and prices until the version moves)."""
    return pgtrigger.Trigger(
        name=name,
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        func="UPDATE metering_config_version SET version = version + 1; RETURN NULL;",
    )


class ConfigVersion(models.Model):
    """One row: a number that every change to meters, burn rates or AI prices increments (database
    triggers, so no writer can forget it). Ingestion keeps those definitions cached per process
    while the number stays the same."""

    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metering_config_version"

    def __str__(self) -> str:
        return str(self.version)


class Aggregation(models.TextChoices):
    COUNT = "count", "Count of events"
    SUM = "sum", "Sum of a value"
    MAX = "max", "Maximum value"
    MIN = "min", "Minimum value"
    UNIQUE_COUNT = "unique_count", "Count of distinct values"
    LATEST = "latest", "Latest value"


@pgtrigger.register(bumps_config_version("meter_bumps_config_version"))
class Meter(models.Model):
    """What usage is: events of one type (optionally filtered on properties), aggregated per
    customer and period. `value_property` names the property holding the number ("" = the event's
    `value`); for unique_count it names the property whose distinct values are counted. The
    definition is fixed once created (its rollups were aggregated by it); `feature` is the
    metered feature whose per-period limit this meter's usage is compared with."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100, db_index=True)
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices)
    value_property = models.CharField(max_length=100, blank=True)
    filters = models.JSONField(default=dict, blank=True)  # {"region": "eu"} or {"model": ["a", "b"]}
    allow_negative = models.BooleanField(default=False)
    unit = models.CharField(max_length=32, blank=True)
    feature = models.ForeignKey(
        "tiers.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="meters"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["feature"], condition=Q(feature__isnull=False), name="metering_one_meter_per_feature"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return self.code


class UsageEvent(models.Model):
    """One accepted usage event (append-only; the table is partitioned by month of `ts`)."""

    event_id = models.TextField(primary_key=True)  # unique through metering_event_key, see module doc
    customer = models.TextField()
    type = models.TextField()
    ts = models.DateTimeField()
    value = models.DecimalField(max_digits=38, decimal_places=9)
    properties = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "metering_event"

    def __str__(self) -> str:
        return self.event_id


class Rollup(models.Model):
    """Pre-aggregated usage of one meter by one customer in one hour (kept up to date by ingestion,
    in the events' transaction): queries read these, never raw events."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    customer = models.TextField()
    hour = models.DateTimeField()
    count = models.BigIntegerField(default=0)
    sum = models.DecimalField(max_digits=38, decimal_places=9, default=0)
    min = models.DecimalField(max_digits=38, decimal_places=9, null=True)
    max = models.DecimalField(max_digits=38, decimal_places=9, null=True)
    latest = models.DecimalField(max_digits=38, decimal_places=9, null=True)
    latest_ts = models.DateTimeField(null=True)

    class Meta:
        db_table = "metering_rollup"
        constraints = [
            models.UniqueConstraint(fields=["meter", "customer", "hour"], name="metering_rollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}:{self.customer}@{self.hour:%Y-%m-%dT%H}"


class RollupValue(models.Model):
    """The distinct values a unique_count meter saw per customer and hour (their count over any
    range is a COUNT(DISTINCT) over these rows, not over raw events)."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    customer = models.TextField()
    hour = models.DateTimeField()
    value = models.TextField()

    class Meta:
        db_table = "metering_rollup_value"
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "customer", "hour", "value"], name="metering_rollup_value_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}:{self.customer}@{self.hour:%Y-%m-%dT%H}={self.value}"


from billing.metering.credit_models import *  # noqa: E402,F403
from billing.metering.sync_models import *  # noqa: E402,F403
