"""Credit adjustments: staff corrections of a customer's balance, written as `adjust` ledger entries.

A positive adjustment adds credits in a grant of its own (source `manual`, effective now, never
expiring, default priority), so burning uses them like any other credits. A negative one takes
credits back from the grants usable now, in burn order, one ledger entry per grant, and is refused
with `insufficient_credits` when they hold too few: a balance never goes below zero. Neither touches
`overage` (it records usage no grant paid for; what to bill for it is the integrator's call).

`reference` is the adjustment's idempotency key per customer: the same reference again answers the
first adjustment (409 if the amount differs). Locks as everywhere in credits.py: the account row,
then the grants in pk order; balance thresholds publish `credits.low` / `credits.exhausted`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.memberships.models import Customer
from billing.metering.credit_models import CreditGrant, CreditLedgerEntry, GrantSource, LedgerKind
from billing.metering.credits import (
    GrantReferenceReused,
    InvalidCredits,
    _accounts_for_update,
    _announce,
    _invalidate,
    _usable,
    burn_order,
)
from billing.metering.exceptions import MeteringError
from kernel.db import rows_update

MAX_REASON = 500


class InsufficientCredits(MeteringError):
    code = "insufficient_credits"
    status_code = 409


@dataclass(frozen=True)
class Adjustment:
    reference: str
    amount: int
    entries: list[CreditLedgerEntry]
    balance: int
    created: bool


def credits_adjust(*, customer: Customer, amount: int, reason: str, reference: str = "") -> Adjustment:
    """Add (amount > 0) or take back (amount < 0) micro-credits; see the module docstring."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise InvalidCredits("'amount' must be a non-zero number of credits.", details={"field": "amount"})
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidCredits(
            f"'reason' is required (at most {MAX_REASON} characters): it stays on the ledger.",
            details={"field": "reason"},
        )
    reference = reference or f"adjust:{uuid.uuid4().hex}"
    with transaction.atomic():
        account = _accounts_for_update([customer.pk])[customer.pk]
        earlier = list(
            CreditLedgerEntry.objects.filter(customer=customer, kind=LedgerKind.ADJUST, reference=reference).order_by("pk")
        )  # fmt: skip
        if earlier:
            if sum(entry.amount for entry in earlier) != amount:
                raise GrantReferenceReused(
                    f"Adjustment reference '{reference}' was used for a different amount.",
                    details={"reference": reference},
                )
            return Adjustment(reference, amount, earlier, account.balance, created=False)
        before, details = account.balance, {"reason": reason}
        if amount > 0:
            entries = [
                _add(customer=customer, amount=amount, reference=reference, balance=before, details=details)
            ]
        else:
            entries = _take(
                customer=customer, amount=-amount, reference=reference, balance=before, details=details
            )
        account.balance = entries[-1].balance_after
        account.save(update_fields=["balance", "updated_at"])
        CreditLedgerEntry.objects.bulk_create(entries)
        _announce(external_id=customer.external_id, before=before, after=account.balance)
        _invalidate({customer.external_id})
    return Adjustment(reference, amount, entries, account.balance, created=True)


def _add(
    *, customer: Customer, amount: int, reference: str, balance: int, details: dict
) -> CreditLedgerEntry:
    grant_reference = f"adjust:{reference}"
    if CreditGrant.objects.filter(customer=customer, reference=grant_reference).exists():
        raise GrantReferenceReused(
            f"Reference '{reference}' belongs to a grant already.", details={"reference": reference}
        )
    grant = CreditGrant.objects.create(
        customer=customer, amount=amount, remaining=amount, effective_at=timezone.now(),
        source=GrantSource.MANUAL, reference=grant_reference,
    )  # fmt: skip
    return CreditLedgerEntry(
        customer=customer, kind=LedgerKind.ADJUST, amount=amount, grant=grant,
        balance_after=balance + amount, reference=reference, details=details,
    )  # fmt: skip


def _take(
    *, customer: Customer, amount: int, reference: str, balance: int, details: dict
) -> list[CreditLedgerEntry]:
    now = timezone.now()
    grants = CreditGrant.objects.select_for_update().filter(customer=customer, remaining__gt=0).order_by("pk")
    usable = sorted((grant for grant in grants if _usable(grant, now)), key=burn_order)
    available = sum(grant.remaining for grant in usable)
    if available < amount:
        raise InsufficientCredits(
            "The customer's usable credits do not cover this adjustment.",
            details={"available_micros": available, "requested_micros": amount},
        )
    entries, due = [], amount
    for grant in usable:
        if due == 0:
            break
        take = min(grant.remaining, due)
        grant.remaining -= take
        due -= take
        balance -= take
        entries.append(
            CreditLedgerEntry(customer=customer, kind=LedgerKind.ADJUST, amount=-take, grant=grant,
                              balance_after=balance, reference=reference, details=details)
        )  # fmt: skip
    rows_update(
        CreditGrant._meta.db_table,
        {"remaining": "bigint"},
        [(e.grant.pk, e.grant.remaining) for e in entries],
    )
    return entries
