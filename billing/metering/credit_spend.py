"""Credits paying invoices: the usable balances an invoice may draw on, and the draw itself.

Invoicing asks for the customers' usable balances (locked, when it is about to finalize), works
out what the credits pay (billing.invoicing.adjustments), then spends exactly that: one `invoice`
ledger entry per grant drawn from, reference `invoice:<id>` (unique per grant and invoice, so an
invoice never draws twice), grants taken in burn order, as a burn at ingestion takes them.

Locks as everywhere in credits: the customers' CreditAccount rows (pk order), then their live
grants (pk order). A finalization holds the invoice and numbering locks first; ingestion never
takes those, so the two orders cannot cross.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from billing.metering.credit_models import (
    CreditAccount,
    CreditAlert,
    CreditGrant,
    CreditLedgerEntry,
    LedgerKind,
)
from billing.metering.credits import _accounts_create_missing, _announce, _invalidate, _usable, burn_order
from kernel.db import rows_update


@dataclass(frozen=True)
class InvoiceSpend:
    """Micro-credits one invoice takes from its customer's usable grants."""

    customer_id: int
    external_id: str
    invoice_id: int
    micros: int


def credits_usable(
    *, customer_ids: list[int], lock: bool = False, when: dt.datetime | None = None
) -> dict[int, int]:
    """Micro-credits usable at `when` (default now) per customer (0 when it has none). `lock`: lock
    the accounts (pk order, made where missing) and then their live grants, until the transaction
    ends, for a spend to follow."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    when = when or timezone.now()
    if lock:
        _accounts_create_missing(ids)
        list(
            CreditAccount.objects.select_for_update().filter(customer_id__in=ids).order_by("pk").values("pk")
        )
    grants = CreditGrant.objects.filter(customer_id__in=ids, remaining__gt=0).order_by("pk")
    if lock:
        grants = grants.select_for_update()
    usable: dict[int, int] = dict.fromkeys(ids, 0)
    for grant in grants:
        if _usable(grant, when):
            usable[grant.customer_id] += grant.remaining
    return usable


def credits_spend_on_invoices(*, spends: list[InvoiceSpend], when: dt.datetime | None = None) -> None:
    """Draw each spend from its customer's usable grants, in burn order (the caller locked them with
    `credits_usable(lock=True)` in this transaction and asks no more than they hold)."""
    spends = [s for s in spends if s.micros > 0]
    if not spends:
        return
    when = when or timezone.now()
    ids = sorted({s.customer_id for s in spends})
    accounts = {a.customer_id: a for a in CreditAccount.objects.filter(customer_id__in=ids)}
    grants: dict[int, list[CreditGrant]] = defaultdict(list)
    for grant in CreditGrant.objects.filter(customer_id__in=ids, remaining__gt=0).order_by("pk"):
        if _usable(grant, when):
            grants[grant.customer_id].append(grant)
    entries, touched, before = [], {}, {cid: accounts[cid].balance for cid in ids}
    for spend in spends:
        account, due = accounts[spend.customer_id], spend.micros
        for grant in sorted(grants[spend.customer_id], key=burn_order):
            if due == 0:
                break
            take = min(grant.remaining, due)
            if take <= 0:
                continue
            grant.remaining -= take
            due -= take
            account.balance -= take
            touched[grant.pk] = grant.remaining
            entries.append(
                CreditLedgerEntry(
                    customer_id=spend.customer_id,
                    kind=LedgerKind.INVOICE,
                    amount=-take,
                    grant=grant,
                    balance_after=account.balance,
                    reference=f"invoice:{spend.invoice_id}",
                    details={"invoice": spend.invoice_id},
                )  # fmt: skip
            )
        if due:  # the caller's lock makes this impossible; never let credits go below zero
            raise RuntimeError(f"credits for invoice {spend.invoice_id} fell short by {due} micro-credits")
    rows_update(CreditGrant._meta.db_table, {"remaining": "bigint"}, list(touched.items()))
    CreditLedgerEntry.objects.bulk_create(entries, batch_size=2000)
    now = timezone.now()
    rows_update(
        CreditAccount._meta.db_table,
        {"balance": "bigint", "updated_at": "timestamptz"},
        [(accounts[cid].pk, accounts[cid].balance, now) for cid in ids],
    )
    thresholds = list(CreditAlert.objects.values_list("threshold", flat=True))
    external = {s.customer_id: s.external_id for s in spends}
    for cid in ids:
        _announce(
            external_id=external[cid], before=before[cid], after=accounts[cid].balance, thresholds=thresholds
        )
    _invalidate(set(external.values()))


def credits_spent_on(*, invoice_id: int) -> int:
    """Micro-credits an invoice took (0: none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(-sum(amount), 0) FROM {CreditLedgerEntry._meta.db_table} "
            "WHERE kind = %s AND reference = %s",
            [LedgerKind.INVOICE.value, f"invoice:{invoice_id}"],
        )
        return int(cursor.fetchone()[0])
