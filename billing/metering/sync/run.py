"""Meter sync, the run: plan per chunk of customers, then report to providers one report at a time
(exactly once, crash-safe). See the package docstring."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.metering.models import Meter
from billing.metering.sync.plan import (
    CHUNK,
    MAX_ERRORS_KEPT,
    SYNC_LOCK_CLASS,
    CustomerOutcome,
    SyncAlreadyRunning,
    _Customer,
    _Delta,
    _deltas_many,
    _load,
    _Target,
    _target_of,
)
from billing.metering.sync_models import (
    MeterSyncReport,
    MeterSyncRun,
    MeterSyncState,
    ReportStatus,
    RunStatus,
)
from kernel.db import rows_update

logger = logging.getLogger("billing.metering.sync")


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
