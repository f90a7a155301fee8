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

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from billing.metering.exceptions import MeteringError
from billing.metering.models import Meter
from billing.metering.selectors import _floor_hour, _next_month, month_start, period_usage_many
from billing.metering.sync_models import (
    MeterSyncReport,
    MeterSyncRun,
    MeterSyncState,
    ReportStatus,
    RunStatus,
)
from billing.metering.validation import OLDEST
from kernel.db import rows_update

logger = logging.getLogger(__name__)

# arbitrary: the advisory lock class of "a meter sync runs in this schema" (the key is the schema's hash)
SYNC_LOCK_CLASS = 70_413_052
REPORTING_PROVIDERS = ("stripe", "polar", "sandbox")
MAX_ERRORS_KEPT = 50
CHUNK = 500


class SyncAlreadyRunning(MeteringError):
    code = "meter_sync_running"
    status_code = 409


@dataclass
class _Target:
    provider: str
    provider_customer_id: str


@dataclass
class _Delta:
    meter: Meter
    state: MeterSyncState  # unsaved for a period seen for the first time
    usage: Decimal
    delta: int
    role: str  # current | final (a past period closed now) | late (a closed period)
    changed: bool = False  # its recorded period changed (saved even without a delta)


@dataclass
class CustomerOutcome:
    reports: int = 0
    units: int = 0
    errors: list[dict] = field(default_factory=list)


def _units(usage) -> int:
    return int(Decimal(usage or 0).to_integral_value(rounding=ROUND_FLOOR))


def _period_of(membership, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """selectors.current_period for a membership already loaded, cut at whole hours."""
    if (
        membership is not None
        and membership.current_period_start
        and membership.current_period_end
        and membership.current_period_start <= now < membership.current_period_end
    ):
        start, end = membership.current_period_start, membership.current_period_end
    else:
        start = month_start(now)
        end = _next_month(start)
    start, end = _floor_hour(start), _floor_hour(end)
    return start, max(end, start + dt.timedelta(hours=1))


def _target_of(membership) -> _Target | None:
    if membership is not None and membership.provider in REPORTING_PROVIDERS:
        return _Target(membership.provider, membership.provider_customer_id)
    return None  # the tenant's default provider


# --- planning (pure reads: also what `usage_unsynced` shows) -----------------------------------


@dataclass
class _Customer:
    """One customer's inputs to planning, loaded in bulk per chunk of customers."""

    customer: object
    membership: object
    states: list[MeterSyncState]
    last_ends: dict[int, dt.datetime]  # meter -> end of its last recorded period (any age)
    pending: list[MeterSyncReport]


def _wanted(*, item: _Customer, meters: list[Meter], now, late_since) -> list[tuple]:
    """The (meter, state, role, changed) whose usage is needed. A customer x meter's periods never
    overlap: a period that began before the last one's end cuts it there; a period that moved
    backwards (a cancel falls back to the calendar month) starts after the last one; usage before
    the first synced period (or in a gap between periods) is a closed period of its own."""
    start, end = _period_of(item.membership, now)
    by_meter: dict[int, list[MeterSyncState]] = defaultdict(list)
    for state in item.states:
        by_meter[state.meter_id].append(state)
    wanted = []
    for meter in meters:
        ordered = sorted(by_meter.get(meter.pk, []), key=lambda s: s.period_start)
        last = ordered[-1] if ordered else None
        changed = set()
        if (
            last is not None
            and last.closed_at is None
            and (last.period_start == start or (last.period_start > start and now < last.period_end))
        ):
            current = last
            if last.period_start == start and last.period_end != end:
                last.period_end = end  # the period was extended or shortened
                changed.add(last.pk)
        else:
            current_start = start
            if last is not None and last.period_start >= start:
                current_start = max(start, last.period_end)
            elif last is not None and last.period_end > start:
                last.period_end = start  # a new period began early: the previous one ends there
                changed.add(last.pk)
            current = MeterSyncState(
                customer=item.customer, meter=meter, period_start=current_start,
                period_end=max(end, current_start + dt.timedelta(hours=1)),
            )  # fmt: skip
            gap_start = item.last_ends.get(meter.pk, OLDEST)
            if gap_start < current_start:
                gap = MeterSyncState(
                    customer=item.customer, meter=meter, period_start=gap_start, period_end=current_start,
                    closed_at=now,
                )  # fmt: skip
                wanted.append((meter, gap, "late", False))
        for state in ordered:
            if state is current:
                continue
            if state.closed_at is None:
                wanted.append((meter, state, "final", True))
            elif late_since is None or state.period_end >= late_since:
                wanted.append((meter, state, "late", state.pk in changed))
        wanted.append((meter, current, "current", current.pk in changed))
    return wanted


def _deltas_many(*, items: list[_Customer], meters_of, now, late_since) -> dict[int, list[_Delta]]:
    """Each customer's deltas; usage read per distinct period for all the customers at once."""
    wanted = {item.customer.pk: _wanted(item=item, meters=meters_of(item), now=now, late_since=late_since)
              for item in items}  # fmt: skip
    requests: dict[tuple, tuple[set, dict]] = defaultdict(lambda: (set(), {}))
    for item in items:
        for meter, state, _, _ in wanted[item.customer.pk]:
            customers, by_pk = requests[(state.period_start, state.period_end)]
            customers.add(item.customer.external_id)
            by_pk[meter.pk] = meter
    usage = {}
    for (period_start, period_end), (customers, by_pk) in requests.items():
        found = period_usage_many(
            customers=sorted(customers), meters=list(by_pk.values()), start=period_start, end=period_end
        )
        for (customer, meter_id), value in found.items():
            usage[(customer, meter_id, period_start, period_end)] = value
    deltas = {}
    for item in items:
        rows = []
        for meter, state, role, changed in wanted[item.customer.pk]:
            key = (item.customer.external_id, meter.pk, state.period_start, state.period_end)
            value = Decimal(usage.get(key) or 0)
            rows.append(_Delta(meter, state, value, _units(value) - state.covered, role, changed))
        deltas[item.customer.pk] = rows
    return deltas


# --- the run -------------------------------------------------------------------------------------


def meter_sync_run(
    *,
    trigger: str = "manual",
    now: dt.datetime | None = None,
    late_days: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MeterSyncRun:
    """Sync every customer's usage now (see the module doc); returns the recorded run.
    Raises SyncAlreadyRunning if a run holds this tenant's lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [SYNC_LOCK_CLASS, connection.schema_name]
        )
        if not cursor.fetchone()[0]:
            raise SyncAlreadyRunning("A meter sync is running for this tenant already.")
    try:
        return _run(trigger=trigger, now=now, late_days=late_days, progress=progress)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(%s))", [SYNC_LOCK_CLASS, connection.schema_name]
            )


def _run(*, trigger, now, late_days, progress) -> MeterSyncRun:
    from billing.memberships.models import Customer

    # a run that was killed never finished: we hold the lock, so nothing else is running
    MeterSyncRun.objects.filter(status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error="interrupted: the process stopped before the run finished"
    )
    run = MeterSyncRun.objects.create(started_at=timezone.now(), trigger=trigger)
    now = now or run.started_at
    late_days = settings.METER_SYNC_LATE_DAYS if late_days is None else late_days
    late_since = now - dt.timedelta(days=late_days)
    providers = _Providers()
    try:
        meters = list(Meter.objects.filter(active=True).order_by("pk"))
        ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
        for offset in range(0, len(ids), CHUNK):
            items = _load(customer_ids=ids[offset : offset + CHUNK], now=now, late_since=late_since)
            # customers with a report left pending are planned after it was resent (below)
            deltas = _deltas_many(
                items=[i for i in items if not i.pending],
                meters_of=lambda i: meters,
                now=now,
                late_since=late_since,
            )
            prepared = [
                (item, *_prepare(item=item, deltas=deltas.get(item.customer.pk), meters=meters, now=now,
                         late_since=late_since, providers=providers))
                for item in items
            ]  # fmt: skip
            with transaction.atomic():  # the chunk's reports are durable before any provider call
                planned = _plan(
                    entries=[
                        (item.customer, d, target) for item, _, target, d in prepared if target is not None
                    ],
                    now=now,
                    run=run,
                )
            for item, outcome, _, _ in prepared:
                for report in planned.get(item.customer.pk, []):
                    _deliver(customer=item.customer, report=report, providers=providers, outcome=outcome)
                run.customers += 1
                run.reports += outcome.reports
                run.units += outcome.units
                run.failures += len(outcome.errors)
                run.errors.extend(outcome.errors[: max(0, MAX_ERRORS_KEPT - len(run.errors))])
                if progress:
                    progress(run.customers, len(ids))
        run.status = RunStatus.PARTIAL if run.failures else RunStatus.SUCCEEDED
    except Exception as exc:
        run.status = RunStatus.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()
    return run


def _load(*, customer_ids: list[int], now: dt.datetime, late_since: dt.datetime | None) -> list[_Customer]:
    """Planning inputs of these customers, in a handful of queries."""
    from billing.memberships.models import ENTITLED_STATUSES, Customer, Membership, MembershipStatus
    from billing.memberships.selectors import clock_offset

    grace_from = timezone.now() + clock_offset() - dt.timedelta(days=settings.DUNNING_GRACE_DAYS)
    memberships = {}
    for membership in Membership.objects.filter(customer_id__in=customer_ids, status__in=ENTITLED_STATUSES):
        # as memberships.selectors.entitled_membership: past due only within the grace period
        if not (
            membership.status == MembershipStatus.PAST_DUE
            and membership.past_due_since
            and membership.past_due_since <= grace_from
        ):
            memberships[membership.customer_id] = membership
    states: dict[int, list[MeterSyncState]] = defaultdict(list)
    for state in _states(customer_ids=customer_ids, late_since=late_since):
        states[state.customer_id].append(state)
    last_ends: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    rows = (
        MeterSyncState.objects.filter(customer_id__in=customer_ids)
        .values_list("customer_id", "meter_id")
        .annotate(end=Max("period_end"))
    )
    for customer_id, meter_id, end in rows:
        last_ends[customer_id][meter_id] = end
    pending: dict[int, list[MeterSyncReport]] = defaultdict(list)
    reports = MeterSyncReport.objects.filter(customer_id__in=customer_ids, status=ReportStatus.PENDING)
    for report in reports.select_related("meter", "state").order_by("pk"):
        pending[report.customer_id].append(report)
    return [
        _Customer(customer, memberships.get(customer.pk), states[customer.pk], last_ends[customer.pk],
                  pending[customer.pk])
        for customer in Customer.objects.filter(pk__in=customer_ids).order_by("pk")
    ]  # fmt: skip


def _states(*, customer_ids: list[int], late_since: dt.datetime | None):
    states = MeterSyncState.objects.filter(customer_id__in=customer_ids)
    if late_since is not None:
        states = states.filter(Q(closed_at__isnull=True) | Q(period_end__gte=late_since))
    return states


class _Providers:
    """The run's adapters, one per provider name (the tenant's default one under None)."""

    def __init__(self):
        self._adapters: dict[str | None, object] = {}

    def get(self, name: str | None):
        from billing.providers.base import ProviderNotSupported
        from billing.providers.registry import provider_for
        from billing.providers.selectors import provider_account_for_checkout

        if name not in self._adapters:
            adapter = provider_for(provider_account_for_checkout(provider=name))
            if not hasattr(adapter, "report_usage"):
                raise ProviderNotSupported(f"The {adapter.name} adapter does not report usage.")
            self._adapters[name] = adapter
        return self._adapters[name]


def _prepare(*, item: _Customer, deltas, meters, now, late_since, providers):
    """(outcome, target, deltas) of a customer; target None: nothing to plan (or no provider)."""
    from billing.providers.base import ProviderError

    customer = item.customer
    outcome = CustomerOutcome()
    if item.pending:  # left by a crashed or interrupted run: resent unchanged before anything new
        blocked = {
            r.meter_id
            for r in item.pending
            if not _deliver(customer=customer, report=r, providers=providers, outcome=outcome)
        }
        fresh = _load(customer_ids=[customer.pk], now=now, late_since=late_since)[0]
        deltas = _deltas_many(
            items=[fresh], meters_of=lambda i: [m for m in meters if m.pk not in blocked], now=now,
            late_since=late_since,
        )[customer.pk]  # fmt: skip
    if not any(d.delta or d.changed or d.role == "final" for d in deltas):
        return outcome, None, deltas
    target = _target_of(item.membership)
    try:
        adapter = providers.get(target.provider if target else None)
    except ProviderError as exc:
        outcome.errors.append(_error(customer, None, exc))
        return outcome, None, deltas
    return outcome, target or _Target(adapter.name, ""), deltas


def _plan(*, entries: list[tuple], now, run) -> dict[int, list[MeterSyncReport]]:
    """Record the states and the pending reports of (customer, deltas, target) entries, in bulk and
    in the caller's transaction; returns each customer's reports."""
    touched: list[MeterSyncState] = []
    planned = []  # (customer, target, delta the report is attributed to, quantity, [(delta, units covered)])
    for customer, deltas, target in entries:
        by_meter: dict[int, list[_Delta]] = defaultdict(list)
        for delta in deltas:
            by_meter[delta.meter.pk].append(delta)
        for meter_deltas in by_meter.values():
            if not any(d.delta or d.changed or d.role == "final" for d in meter_deltas):
                continue
            current = next(d for d in meter_deltas if d.role == "current")
            forwarded = []
            for delta in meter_deltas:
                touched.append(delta.state)
                delta.state.usage = delta.usage
                delta.state.synced_at = now
                if delta.role == "final":
                    delta.state.closed_at = now
                    if delta.delta > 0:
                        planned.append((customer, target, delta, delta.delta, [(delta, delta.delta)]))
                        delta.state.reports += 1
                        continue
                if delta.role != "current" and delta.delta:
                    forwarded.append(
                        (delta, delta.delta)
                    )  # late, or a negative remainder: in the current period
            covered = ([(current, current.delta)] if current.delta else []) + forwarded
            if sum(units for _, units in covered):
                planned.append((customer, target, current, sum(units for _, units in covered), covered))
                current.state.reports += 1
            else:  # deltas that cancel out: nothing to send, the periods are covered as they are
                for delta, units in covered:
                    delta.state.covered += units
    MeterSyncState.objects.bulk_create([state for state in touched if state.pk is None])
    _states_update([state for state in touched if state.pk is not None])
    reports: dict[int, list[MeterSyncReport]] = defaultdict(list)
    for customer, target, delta, quantity, covered in planned:
        reports[customer.pk].append(_report(customer, delta, quantity, covered, run, target))
    MeterSyncReport.objects.bulk_create([r for rs in reports.values() for r in rs])
    return reports


def _states_update(states: list[MeterSyncState]) -> None:
    """Save the planning fields of these states in one statement."""
    rows_update(
        MeterSyncState._meta.db_table,
        {"usage": "numeric", "synced_at": "timestamptz", "closed_at": "timestamptz", "period_end": "timestamptz",
         "reports": "int", "covered": "bigint"},
        [(s.pk, s.usage, s.synced_at, s.closed_at, s.period_end, s.reports, s.covered) for s in states],
    )  # fmt: skip


def _report(customer, delta: _Delta, quantity: int, covered: list, run, target: _Target) -> MeterSyncReport:
    state = delta.state
    reported_after = state.reported + quantity
    # (customer, meter, period, report number, reported total): the same report keeps it when resent
    identifier = (
        f"msync-{customer.pk}-{delta.meter.pk}-{state.period_start:%Y%m%d%H}-{state.reports}-{reported_after}"
    )
    return MeterSyncReport(
        run=run, identifier=identifier, customer=customer, meter=delta.meter, state=state, quantity=quantity,
        reported_after=reported_after, parts={"covered": {str(d.state.pk): units for d, units in covered}},
        provider=target.provider, provider_customer_id=target.provider_customer_id,
    )  # fmt: skip


def _deliver(*, customer, report: MeterSyncReport, providers, outcome: CustomerOutcome) -> bool:
    """Send one report (retrying an unavailable provider) and apply it; False if it is not applied."""
    from billing.providers.base import ProviderError, ProviderUnavailable, UsageReport

    tries = max(1, settings.METER_SYNC_TRIES)
    backoff = settings.METER_SYNC_BACKOFF
    try:
        adapter = providers.get(report.provider)
    except ProviderError as exc:
        outcome.errors.append(_error(customer, report, exc))
        return False
    state = report.state
    usage_report = UsageReport(
        report_id=report.identifier, customer=customer.external_id, provider_customer_id=report.provider_customer_id,
        meter=report.meter.code, quantity=report.quantity, period_start=state.period_start,
        period_end=state.period_end,
    )  # fmt: skip
    for attempt in range(tries):
        report.attempts += 1
        try:
            ref = adapter.report_usage(usage_report)
        except ProviderUnavailable as exc:
            if attempt + 1 < tries:
                time.sleep(backoff * 2**attempt)
                continue
            MeterSyncReport.objects.filter(pk=report.pk).update(
                attempts=report.attempts, error=str(exc)[:2000]
            )
            outcome.errors.append(_error(customer, report, exc))
            return False
        except ProviderError as exc:
            MeterSyncReport.objects.filter(pk=report.pk).update(
                status=ReportStatus.REFUSED, attempts=report.attempts, error=str(exc)[:2000]
            )
            outcome.errors.append(_error(customer, report, exc))
            return False
        _apply(report=report, ref=str(ref or ""))
        outcome.reports += 1
        outcome.units += report.quantity
        return True
    return False


def _apply(*, report: MeterSyncReport, ref: str) -> None:
    """The provider accepted the report: record it and the states' new totals, together (one
    statement: nothing happens if the report is not pending any more, i.e. applied already)."""
    covered = {int(k): v for k, v in report.parts.get("covered", {}).items()}
    covered.setdefault(report.state_id, 0)
    values = sorted(covered.items())
    with transaction.atomic(), connection.cursor() as cursor:
        # losing this commit in a database crash is safe: the report stays pending and is resent
        # with its identifier (the provider records it once); the plan's commit stays synchronous
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(
            "WITH sent AS (UPDATE metering_sync_report SET status = %s, provider_ref = %s, sent_at = %s, "
            "attempts = %s, error = '' WHERE id = %s AND status = %s RETURNING id) "
            "UPDATE metering_sync_state AS s SET covered = s.covered + v.units, "
            "reported = CASE WHEN s.id = %s THEN %s ELSE s.reported END "
            f"FROM sent, (VALUES {', '.join(['(%s::bigint, %s::bigint)'] * len(values))}) AS v(id, units) "
            "WHERE s.id = v.id",
            [ReportStatus.SENT, ref[:255], timezone.now(), report.attempts, report.pk, ReportStatus.PENDING,
             report.state_id, report.reported_after, *[x for pair in values for x in pair]],
        )  # fmt: skip


def _error(customer, report: MeterSyncReport | None, exc: Exception) -> dict:
    logger.warning("meter sync: %s %s: %s", customer.external_id, report.identifier if report else "", exc)
    return {
        "customer": customer.external_id,
        "meter": report.meter.code if report else "",
        "report": report.identifier if report else "",
        "code": getattr(exc, "code", type(exc).__name__),
        "message": str(exc)[:500],
    }


# --- reads ---------------------------------------------------------------------------------------


def usage_unsynced(*, customer=None, now: dt.datetime | None = None) -> list[dict]:
    """Usage not (yet) accepted by a provider: pending reports, and what the next run would report
    (closed periods of any age included). `customer`: one Customer, or None for the tenant."""
    from billing.memberships.models import Customer

    now = now or timezone.now()
    meters = list(Meter.objects.filter(active=True).order_by("pk"))
    ids = (
        [customer.pk]
        if customer is not None
        else list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    )
    rows = []
    for offset in range(0, len(ids), CHUNK):
        items = _load(customer_ids=ids[offset : offset + CHUNK], now=now, late_since=None)
        for item in items:
            rows.extend(_row(item.customer, r.meter, r.state, r.quantity, "pending") for r in item.pending)

        def unblocked(item: _Customer) -> list[Meter]:
            blocked = {r.meter_id for r in item.pending}
            return [m for m in meters if m.pk not in blocked]

        deltas = _deltas_many(items=items, meters_of=unblocked, now=now, late_since=None)
        for item in items:
            rows.extend(
                _row(item.customer, d.meter, d.state, d.delta, d.role)
                for d in deltas[item.customer.pk]
                if d.delta
            )
    return rows


def _row(customer, meter, state, quantity: int, kind: str) -> dict:
    return {
        "customer": customer.external_id,
        "meter": meter.code,
        "period_start": state.period_start,
        "period_end": state.period_end,
        "quantity": quantity,
        "kind": kind,
    }
