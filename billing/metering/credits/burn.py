"""Credits: grants, synchronous burning at ingestion, expiry, allowances, thresholds.

Burning is SYNCHRONOUS: `credits_burn` runs inside the ingestion transaction, on the events that
batch stored for the first time, so a replayed event never burns twice and a rolled-back batch
burns nothing. Per batch and customer it writes one `burn` ledger row per grant it drew from
(reference `burn:<batch>`, details: event count, first/last event id, cost per source); the
per-event detail stays in the raw events.

Pricing: what each event costs is credit_pricing.py's (AI prices, burn rates, with history).

Rounding: costs are exact decimals of micro-credits. Per customer, the events of a batch are
taken in timestamp order, each adding its exact cost to the account's `carry`; the whole
micro-credits of the carry are burned and the fraction (< 1 micro-credit) stays in `carry`.
So over any sequence of events the burned total is floor(exact total cost), never more, and the
shortfall is below one micro-credit (a millionth of a credit).

Consumption: usable grants (effective_at <= event ts < expires_at, remaining > 0) by priority,
then earliest expiry (none last), then creation. What no usable grant covers is recorded as
`overage` on the batch's last ledger row and summed on the account (it is not repaid from later
grants; billing it is the integrator's decision).

Locks: the customers' CreditAccount rows (pk order), then their live grants (pk order); every
writer here takes them in that order, after ingestion's own locks, so burns, grants and expiry
are exact under concurrency and do not deadlock.

Thresholds: a balance change that takes a balance from >= a `CreditAlert` threshold to below it
publishes `credits.low` (once per crossing); one that takes a positive balance to zero publishes
`credits.exhausted`. Both are outbound events recorded in the transaction, delivered after commit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from billing.memberships.models import Customer
from billing.metering.credit_models import (
    MICROS,
    CreditAccount,
    CreditAlert,
    CreditGrant,
    CreditLedgerEntry,
    LedgerKind,
    credits_text,
)
from billing.metering.credit_pricing import EXACT, Prices, event_cost
from billing.metering.exceptions import MeteringError
from billing.metering.signals import snapshots_stale
from kernel.db import rows_update


class InvalidCredits(MeteringError):
    code = "invalid_credits"


class GrantReferenceReused(MeteringError):
    code = "grant_reference_reused"
    status_code = 409


def credits_to_micros(credits: Decimal) -> int:
    micros = Decimal(credits) * MICROS
    if micros != micros.to_integral_value():
        raise InvalidCredits("Credits have at most 6 decimal places.", details={"field": "amount"})
    return int(micros)


# --- locks and thresholds -----------------------------------------------------------------------


def _accounts_create_missing(customer_ids: list[int]) -> list[int]:
    """Make the accounts these customers lack (one statement, no models); their ids, sorted."""
    ids = sorted(set(customer_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CreditAccount._meta.db_table} (customer_id, balance, carry, overage, updated_at) "
            "SELECT unnest(%s::bigint[]), 0, 0, 0, now() ON CONFLICT (customer_id) DO NOTHING",
            [ids],
        )
    return ids


def _accounts_for_update(customer_ids: list[int]) -> dict[int, CreditAccount]:
    """The customers' accounts, made where missing, locked in pk order."""
    ids = _accounts_create_missing(customer_ids)
    accounts = CreditAccount.objects.select_for_update().filter(customer_id__in=ids).order_by("pk")
    return {account.customer_id: account for account in accounts}


def burn_order(grant: CreditGrant) -> tuple:  # credits_burn applies the same order to grant rows
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return grant.priority, grant.expires_at or far, grant.created_at, grant.pk


def _usable(grant: CreditGrant, when: dt.datetime) -> bool:
    return (
        grant.remaining > 0
        and grant.effective_at <= when
        and (grant.expires_at is None or grant.expires_at > when)
    )


def _announce(*, external_id: str, before: int, after: int, thresholds: list[int] | None = None) -> None:
    """Publish credits.low for each threshold this change crossed downwards, credits.exhausted when
    a positive balance reached zero (outbound webhooks, delivered after commit)."""
    if after >= before:
        return
    from billing.events.services import event_publish

    if thresholds is None:
        thresholds = list(CreditAlert.objects.values_list("threshold", flat=True))
    for threshold in sorted(thresholds, reverse=True):
        if before >= threshold > after:
            event_publish(
                type="credits.low",
                customer=external_id,
                payload={"customer": external_id, "threshold": credits_text(threshold),
                         "balance": credits_text(after), "balance_micros": after},
            )  # fmt: skip
    if before > 0 and after == 0:
        event_publish(
            type="credits.exhausted", customer=external_id, payload={"customer": external_id, "balance": "0"}
        )


def _invalidate(external_ids: set[str]) -> None:
    # the snapshot carries the balance: drop it now and again once the change is visible
    snapshots_stale.send(sender=CreditGrant, customers=external_ids)


# --- burning (called by ingestion, in its transaction) --------------------------------------------


@dataclass
class _Burn:
    events: int = 0
    first: str = ""
    last: str = ""
    drawn: dict[int, int] = field(default_factory=dict)  # grant pk -> micro-credits, in draw order
    overage: int = 0
    sources: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_FAR = 2**62
# a live grant as burning reads it: [pk, remaining, priority, effective, expires (None: never),
# created], times in integer microseconds since 1970 (exact, and no datetime per grant to build)
_GRANT_ROWS = (
    "SELECT id, customer_id, remaining, priority, (extract(epoch FROM effective_at) * 1000000)::bigint, "
    "(extract(epoch FROM expires_at) * 1000000)::bigint, (extract(epoch FROM created_at) * 1000000)::bigint "
    "FROM {table} WHERE customer_id = ANY(%s) AND remaining > 0 ORDER BY id FOR UPDATE"
)


def credits_burn(*, fresh: list, prices: Prices) -> set[str]:
    """Burn the credits the newly stored events cost (see the module docstring); returns the
    customers whose balance moved. Must run inside the ingestion transaction. A batch touches
    hundreds of customers: rows are read and written as tuples and arrays, not models."""
    if prices.empty:
        return set()
    costs: dict[str, list] = defaultdict(list)
    for row, contributions in fresh:
        priced = event_cost(prices, row, contributions)
        if priced is not None:
            costs[row.customer].append(((row.ts - _EPOCH) // _MICROSECOND, row.event_id, *priced))
    if not costs:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, external_id FROM {Customer._meta.db_table} WHERE external_id = ANY(%s)",
            [list(costs)],
        )
        customers = dict(cursor.fetchall())
        ids = sorted(customers)
        _accounts_create_missing(ids)
        cursor.execute(  # locked in pk order, as _accounts_for_update does
            f"SELECT customer_id, id, balance, carry, overage FROM {CreditAccount._meta.db_table} "
            "WHERE customer_id = ANY(%s) ORDER BY id FOR UPDATE",
            [ids],
        )
        accounts = {customer_id: [pk, balance, carry, overage] for customer_id, pk, *(balance, carry, overage) in cursor.fetchall()}  # fmt: skip
        cursor.execute(_GRANT_ROWS.format(table=CreditGrant._meta.db_table), [ids])
        grants: dict[int, list[list]] = defaultdict(list)
        for pk, customer_id, *rest in cursor.fetchall():
            grants[customer_id].append([pk, *rest])
    batch = uuid.uuid4().hex
    thresholds = None
    moved: set[str] = set()
    entries, touched, changed = [], [], []
    for customer_id in ids:
        external_id, account = customers[customer_id], accounts[customer_id]
        # burn_order() and _usable() on rows: priority, then earliest expiry (none last), creation, pk
        mine = sorted(
            grants.get(customer_id, []), key=lambda g: (g[2], _FAR if g[4] is None else g[4], g[5], g[0])
        )
        burn, carry = _Burn(), account[2]
        for when, event_id, cost, source in sorted(costs[external_id], key=lambda c: (c[0], c[1])):
            burn.events += 1
            burn.first, burn.last = burn.first or event_id, event_id
            burn.sources[source] += cost
            carry = EXACT.add(carry, cost)
            due = int(carry)
            carry -= due
            for grant in mine:
                if due == 0:
                    break
                if grant[1] > 0 and grant[3] <= when and (grant[4] is None or grant[4] > when):
                    take = min(grant[1], due)
                    grant[1] -= take
                    due -= take
                    burn.drawn[grant[0]] = burn.drawn.get(grant[0], 0) + take
            burn.overage += due
        before = balance = account[1]
        details = json.dumps({"batch": batch, "events": burn.events, "first_event": burn.first, "last_event": burn.last,
                              "sources": {k: str(v.quantize(Decimal("0.000001"))) for k, v in sorted(burn.sources.items())}})  # fmt: skip
        rows = []
        for grant_pk, taken in burn.drawn.items():
            balance -= taken
            rows.append(
                [customer_id, LedgerKind.BURN.value, -taken, 0, grant_pk, balance, f"burn:{batch}", details]
            )
        if burn.overage:
            if not rows:
                rows.append(
                    [customer_id, LedgerKind.BURN.value, 0, 0, None, balance, f"burn:{batch}", details]
                )
            rows[-1][3] = burn.overage
        entries.extend(rows)
        touched.extend((g[0], g[1]) for g in mine if g[0] in burn.drawn)
        changed.append((account[0], balance, carry, account[3] + burn.overage))
        if balance != before:
            moved.add(external_id)
            if thresholds is None:
                thresholds = list(CreditAlert.objects.values_list("threshold", flat=True))
            _announce(external_id=external_id, before=before, after=balance, thresholds=thresholds)
    now = timezone.now()
    rows_update(CreditGrant._meta.db_table, {"remaining": "bigint"}, touched)
    with (
        connection.cursor() as cursor,
        cursor.copy(
            f"COPY {CreditLedgerEntry._meta.db_table} (customer_id, kind, amount, overage, grant_id, balance_after, "
            "reference, details, created_at) FROM STDIN"
        ) as copy,
    ):
        for entry in entries:
            copy.write_row((*entry, now))
    rows_update(
        CreditAccount._meta.db_table,
        {"balance": "bigint", "carry": "numeric", "overage": "bigint", "updated_at": "timestamptz"},
        [(*values, now) for values in changed],
    )
    if moved:
        _invalidate(moved)
    return moved
