"""Meter sync, planning: what each customer's usage of each meter owes its provider (pure reads,
also what `usage_unsynced` shows). See the package docstring."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from billing.metering.exceptions import MeteringError
from billing.metering.models import Meter
from billing.metering.selectors import _floor_hour, _next_month, month_start, period_usage_many
from billing.metering.sync_models import (
    MeterSyncReport,
    MeterSyncState,
    ReportStatus,
)
from billing.metering.validation import OLDEST

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


def _load(*, customer_ids: list[int], now: dt.datetime, late_since: dt.datetime | None) -> list[_Customer]:
    """Planning inputs of these customers, in a handful of queries."""
    from billing.memberships.models import ENTITLED_STATUSES, Customer, Membership, MembershipStatus
    from billing.memberships.selectors import clock_offset

    grace_from = timezone.now() + clock_offset() - dt.timedelta(days=settings.DUNNING_GRACE_DAYS)
    memberships = {}
    plans = Membership.objects.filter(
        customer_id__in=customer_ids, status__in=ENTITLED_STATUSES, creator__isnull=True
    )  # the plan only: a creator's channel membership prices no usage
    for membership in plans:
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
