"""Meter sync: report each customer's usage of each meter to their payment provider (nightly).

What is reported
    Per customer x meter x billing period, the DELTA between the period's usage now (from the hourly
    rollups: `period_usage_many`, the aggregate of `selectors.period_usage` for a chunk of customers
    in one query) and what was already reported of it (`MeterSyncState.covered`).
    A re-run with no new usage reports nothing; new events report only their delta. Providers sum
    the reported values, so their total for a period equals our aggregate. Quantities are whole
    units (the floor of the aggregate): a fraction of a `sum` meter waits until it makes a unit.
    A delta can be negative (a `min`/`latest` meter, a `sum` with negative values); it is reported
    as is (a provider that refuses it makes it a visible failure).

Billing periods
    The customer's period as entitlements see it (`selectors.current_period`: the entitled
    membership's current period, else the UTC calendar month), cut at whole hours because rollups
    are hourly: usage in the hour a period ends at belongs to the next one, so consecutive periods
    tile exactly. If a new period starts before the previous one's recorded end (a plan change
    restarted the period), the previous one is cut there.

Late events
    An event lands in the period of its own timestamp (rollups). While that period is the current
    one, its usage is in the period's delta. A past period is CLOSED by the first run after its end
    (its remaining delta is reported in its own period, timestamped just before its end). Usage that
    reaches a closed period later is reported in the customer's CURRENT period report (forwarded:
    the closed state's `covered` grows, the current state's `reported` grows, by the same units, in
    the transaction that records the provider's acceptance), so nothing is lost or sent twice.
    Closed periods that ended within METER_SYNC_LATE_DAYS (default 62) are re-checked each run;
    older ones are listed by `usage_unsynced` (never silently dropped) and need a run with a wider
    window (`meter_sync_run(late_days=…)` / `manage.py meter_sync --late-days`).

Exactly once, crash-safe
    A report is written (`MeterSyncReport`, pending) in the same transaction that plans it, BEFORE
    the provider call; the provider call carries its identifier, derived from (customer, meter,
    period start, report number, reported total after it); the provider's acceptance and the
    states' new totals are committed together afterwards, one report at a time. A run that crashes
    between the call and the commit leaves the report pending; the next run resends it unchanged
    (same identifier, same quantity: the provider de-duplicates it) before planning anything new for
    that period. Each customer is committed on its own, so a crashed run resumes where it stopped.
    One run per tenant at a time (a session advisory lock): a second one is refused.
    Planning is durable (a synchronous commit per chunk of 500 customers) before any provider call;
    the acceptance commits may be asynchronous (losing one only leaves its report pending).
    Limit: Stripe keeps meter-event identifiers (and idempotency keys) for at least 24 hours, so a
    report left pending should be resent within a day: the Celery task retries a crashed run
    within minutes, and `manage.py meter_sync` resends at once.

Providers and customers
    Every customer is looked at. The target is the provider of their entitled membership if it
    reports usage (stripe, polar, sandbox) with its `provider_customer_id`, else the tenant's
    default provider (the sandbox records reports in `SandboxUsageReport`). The event name at the
    provider is the meter's code (a Stripe meter's `event_name`, a Polar event `name`). All active
    meters are synced.

Retries
    A provider that is unavailable (`ProviderUnavailable`) is retried METER_SYNC_TRIES times (3) with
    exponential backoff from METER_SYNC_BACKOFF seconds (0.5); then the report stays pending for the
    next run and counts as a failure (the run is `partial`). A refusal (`ProviderError`) marks the
    report `refused` (its usage is planned again next run) and counts as a failure. One customer's
    failure never stops the others; an unexpected error fails the run (the Celery task retries it).
"""

from billing.metering.sync.plan import CHUNK, SYNC_LOCK_CLASS, CustomerOutcome, SyncAlreadyRunning
from billing.metering.sync.reads import usage_unsynced
from billing.metering.sync.run import meter_sync_run

__all__ = [
    "CHUNK",
    "SYNC_LOCK_CLASS",
    "CustomerOutcome",
    "SyncAlreadyRunning",
    "meter_sync_run",
    "usage_unsynced",
]
