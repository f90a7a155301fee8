"""The comparison itself, free of the database: a provider's balance entries against our recorded
movements, matched by the provider's ids.

A pair belongs to the day of the provider's entry, so a charge the provider booked at 23:59:59
and we recorded at 00:00:01 is compared once, in the provider's day, and neither day reports it
missing: our side is looked up by id whatever its date, and the provider's entries are fetched a
day either side of the window (`MARGIN`) so that ours near midnight find theirs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from billing.ledger.reconciliation.models import ItemKind
from billing.providers.base import BalanceEntry

MARGIN = dt.timedelta(days=1)
COMPARED_TYPES = {"charge": "charge", "payment": "charge", "refund": "refund"}


@dataclass(frozen=True)
class Movement:
    """One of our recorded payments as the provider's books would show it: `amount` signed (a
    refund negative), `fee` what we recorded the provider kept, `ledger` what our ledger moved on
    `cash:<provider>` for it (None: never posted). `refs` are the provider ids it answers to."""

    payment_id: int
    kind: str  # charge | refund
    refs: tuple[str, ...]
    amount: int
    fee: int
    currency: str
    occurred_at: dt.datetime
    ledger: int | None


@dataclass(frozen=True)
class Difference:
    kind: str
    provider_ref: str = ""
    provider_entry: str = ""
    payment_id: int | None = None
    currency: str = ""
    provider_amount: int | None = None
    provider_fee: int | None = None
    our_amount: int | None = None
    our_fee: int | None = None
    ledger_amount: int | None = None
    occurred_at: dt.datetime | None = None
    details: dict = field(default_factory=dict)


@dataclass
class Outcome:
    provider_count: int = 0
    ledger_count: int = 0
    matched_count: int = 0
    differences: list[Difference] = field(default_factory=list)


def compare(
    *, theirs: list[BalanceEntry], ours: list[Movement], since: dt.datetime, until: dt.datetime
) -> Outcome:
    """Every unexplained difference between the provider's entries created in [since, until) and
    our movements that occurred then (see the module's docstring for the pairing rule)."""
    outcome = Outcome()
    index: dict[tuple[str, str], Movement] = {}
    for movement in ours:
        for ref in movement.refs:
            if ref:
                index.setdefault((movement.kind, ref), movement)
    paired: set[int] = set()
    for entry in theirs:
        kind = COMPARED_TYPES.get(entry.type)
        if kind is None:
            continue
        ours_for_it = next(
            (index[(kind, ref)] for ref in (entry.source, *entry.related) if (kind, ref) in index), None
        )
        if ours_for_it is not None:
            paired.add(ours_for_it.payment_id)
        if not since <= entry.created < until:
            continue  # its own day's run compares it
        outcome.provider_count += 1
        if ours_for_it is None:
            outcome.differences.append(_theirs_only(entry))
            continue
        found = _pair(entry, ours_for_it)
        outcome.differences += found
        outcome.matched_count += not found
    for movement in ours:
        if not since <= movement.occurred_at < until:
            continue
        outcome.ledger_count += 1
        if movement.payment_id not in paired:
            outcome.differences.append(
                Difference(
                    kind=ItemKind.MISSING_AT_PROVIDER, provider_ref=movement.refs[0], payment_id=movement.payment_id,
                    currency=movement.currency, our_amount=movement.amount, our_fee=movement.fee,
                    ledger_amount=movement.ledger, occurred_at=movement.occurred_at,
                    details={"kind": movement.kind, "refs": list(movement.refs)},
                )
            )  # fmt: skip
    return outcome


def _theirs_only(entry: BalanceEntry) -> Difference:
    return Difference(
        kind=ItemKind.MISSING_IN_LEDGER, provider_ref=entry.source, provider_entry=entry.entry_id,
        currency=entry.currency, provider_amount=entry.amount, provider_fee=entry.fee, occurred_at=entry.created,
        details={"type": entry.type, "reason": "no payment of ours names it"},
    )  # fmt: skip


def _pair(entry: BalanceEntry, movement: Movement) -> list[Difference]:
    both = {
        "provider_ref": entry.source, "provider_entry": entry.entry_id, "payment_id": movement.payment_id,
        "currency": entry.currency, "provider_amount": entry.amount, "provider_fee": entry.fee,
        "our_amount": movement.amount, "our_fee": movement.fee, "ledger_amount": movement.ledger,
        "occurred_at": entry.created,
    }  # fmt: skip
    found = []
    if entry.currency != movement.currency or entry.amount != movement.amount:
        details = {"reason": "amount", "our_currency": movement.currency}
        found.append(Difference(kind=ItemKind.AMOUNT_MISMATCH, details=details, **both))
    if entry.fee != movement.fee:
        found.append(Difference(kind=ItemKind.FEE_MISMATCH, details={"reason": "fee"}, **both))
    if found:
        return found
    if movement.ledger is None:
        reason = "recorded, never posted to the ledger"
        return [Difference(kind=ItemKind.MISSING_IN_LEDGER, details={"reason": reason}, **both)]
    if movement.ledger != entry.amount - entry.fee:
        details = {"reason": "ledger", "expected_ledger": entry.amount - entry.fee}
        return [Difference(kind=ItemKind.AMOUNT_MISMATCH, details=details, **both)]
    return []
