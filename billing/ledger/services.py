"""Ledger writes: post a balanced transaction once per (source, source_id), reverse one once.

Every posting validates before it touches the database (PostingInvalid), then, in one database
transaction: inserts the transaction (its unique (source, source_id) makes a replay, even a
concurrent one, return the first), adds its deltas to the accounts' running balances in one
statement that locks the balance rows in (account id, currency) order -- so postings touching the
same accounts queue instead of deadlocking -- adds them to the accounts' daily totals per source
(DailyTotal, under the same locks), and writes the entries with the balance after each.
The database checks at commit that the entries sum to zero per currency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.ledger.chart import account_kind
from billing.ledger.exceptions import PostingInvalid
from billing.ledger.models import JournalEntry, JournalTransaction, LedgerAccount

REVERSAL_SOURCE = "reversal"


@dataclass(frozen=True)
class Posting:
    """A transaction to post: `entries` are (account code, currency, amount) with amounts in signed
    minor units, debit positive, credit negative."""

    source: str
    source_id: str
    occurred_at: dt.datetime
    description: str
    entries: list[tuple[str, str, int]]
    metadata: dict = field(default_factory=dict)


def _validated(posting: Posting) -> list[tuple[str, str, int]]:
    def bad(message: str, **details) -> PostingInvalid:
        return PostingInvalid(
            message, details={"source": posting.source, "source_id": posting.source_id, **details}
        )

    if not posting.source or not posting.source_id:
        raise bad("A posting needs a source and a source id.")
    if len(posting.source) > 40 or len(posting.source_id) > 255:
        raise bad("The source is at most 40 characters and the source id at most 255.")
    if not isinstance(posting.occurred_at, dt.datetime) or timezone.is_naive(posting.occurred_at):
        raise bad("occurred_at must be an aware datetime.")
    entries = list(posting.entries)
    if len(entries) < 2:
        raise bad("A transaction has at least two entries.", entries=len(entries))
    sums: dict[str, int] = defaultdict(int)
    for entry in entries:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise bad("Each entry is (account code, currency, amount).")
        code, currency, amount = entry
        if not isinstance(code, str) or account_kind(code) is None:
            raise bad(f"No account '{code}' in the chart.", account=str(code))
        if (
            not isinstance(currency, str)
            or len(currency) != 3
            or not currency.isascii()
            or not currency.islower()
            or not currency.isalpha()
        ):
            raise bad(f"Currency '{currency}' is not a lowercase three-letter code.", currency=str(currency))
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise bad("Amounts are integers in minor units.", account=code)
        if amount == 0:
            raise bad("An entry's amount is never zero.", account=code)
        sums[currency] += amount
    unbalanced = {currency: total for currency, total in sums.items() if total}
    if unbalanced:
        raise bad("The entries do not sum to zero in each currency.", unbalanced=unbalanced)
    return [tuple(entry) for entry in entries]


def _accounts(codes: set[str]) -> dict[str, LedgerAccount]:
    """The accounts of `codes`, created from the chart on first use (concurrently: once)."""
    found = {account.code: account for account in LedgerAccount.objects.filter(code__in=codes)}
    missing = sorted(codes - found.keys())
    if missing:
        rows = []
        for code in missing:
            kind, name = account_kind(code)
            rows.append(LedgerAccount(code=code, kind=kind, name=name))
        LedgerAccount.objects.bulk_create(rows, ignore_conflicts=True)
        found.update({account.code: account for account in LedgerAccount.objects.filter(code__in=missing)})
    return found


def _write_entries(postings: list[tuple[JournalTransaction, list[tuple[str, str, int]]]]) -> None:
    accounts = _accounts({code for _, entries in postings for code, _, _ in entries})
    deltas: dict[tuple[int, str], int] = defaultdict(int)
    for _, entries in postings:
        for code, currency, amount in entries:
            deltas[(accounts[code].pk, currency)] += amount
    keys = sorted(deltas)
    now = timezone.now()
    # one statement, rows in (account id, currency) order: each balance row is locked as it is
    # updated, so two postings lock their common rows in the same order and never deadlock
    values = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    params = [p for key in keys for p in (key[0], key[1], deltas[key], now)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_accountbalance (account_id, currency, balance, updated_at) VALUES "
            + values
            + " ON CONFLICT (account_id, currency) DO UPDATE SET balance = ledger_accountbalance.balance"
            " + EXCLUDED.balance, updated_at = EXCLUDED.updated_at RETURNING account_id, currency, balance",
            params,
        )
        running = {
            (account_id, currency): balance - deltas[(account_id, currency)]
            for account_id, currency, balance in cursor.fetchall()
        }
    _add_daily_totals(postings, accounts)
    rows = []
    for txn, entries in postings:
        for code, currency, amount in entries:
            key = (accounts[code].pk, currency)
            running[key] += amount
            rows.append(
                JournalEntry(
                    transaction=txn, account=accounts[code], currency=currency, amount=amount,
                    balance_after=running[key], occurred_at=txn.occurred_at,
                )
            )  # fmt: skip
    JournalEntry.objects.bulk_create(rows, batch_size=2000)


def _add_daily_totals(
    postings: list[tuple[JournalTransaction, list[tuple[str, str, int]]]], accounts: dict[str, LedgerAccount]
) -> None:
    """Add the entries to their (source, UTC day, account, currency) totals, one statement. Only a
    posting that holds the balance row of (account, currency) -- locked just before, until commit --
    writes that account's totals, so these rows add no lock wait and no deadlock of their own."""
    sums: dict[tuple[str, dt.date, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for txn, entries in postings:
        day = txn.occurred_at.astimezone(dt.UTC).date()
        for code, currency, amount in entries:
            sums[(txn.source, day, accounts[code].pk, currency)][0 if amount > 0 else 1] += amount
    keys = sorted(sums)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_dailytotal (source, day, account_id, currency, debits, credits) VALUES "
            + values
            + " ON CONFLICT (source, day, account_id, currency) DO UPDATE SET"
            " debits = ledger_dailytotal.debits + EXCLUDED.debits,"
            " credits = ledger_dailytotal.credits + EXCLUDED.credits",
            [p for key in keys for p in (*key, *sums[key])],
        )


def _row(posting: Posting, reverses: JournalTransaction | None = None) -> JournalTransaction:
    return JournalTransaction(
        source=posting.source,
        source_id=posting.source_id,
        occurred_at=posting.occurred_at,
        description=posting.description[:300],
        metadata=dict(posting.metadata),
        reverses=reverses,
    )


def _post(posting: Posting, *, reverses: JournalTransaction | None = None) -> JournalTransaction:
    entries = _validated(posting)
    with transaction.atomic():
        existing = JournalTransaction.objects.filter(
            source=posting.source, source_id=posting.source_id
        ).first()
        if existing is not None:
            return existing
        txn = _row(posting, reverses)
        try:
            with transaction.atomic():  # a concurrent post of the same source waits here, then loses
                txn.save()
        except IntegrityError:
            existing = JournalTransaction.objects.filter(
                source=posting.source, source_id=posting.source_id
            ).first()
            if existing is None:
                raise
            return existing
        _write_entries([(txn, entries)])
    return txn


def ledger_post(
    *,
    source: str,
    source_id: str,
    occurred_at: dt.datetime,
    description: str,
    entries: list[tuple[str, str, int]],
    metadata: dict | None = None,
) -> JournalTransaction:
    """Post a balanced transaction once: posting the same (source, source_id) again posts nothing
    and returns the first. Entries are (account code, currency, amount), debit positive."""
    posting = Posting(
        source=source, source_id=str(source_id), occurred_at=occurred_at, description=description,
        entries=list(entries), metadata=metadata or {},
    )  # fmt: skip
    return _post(posting)


def ledger_post_many(postings: list[Posting]) -> list[JournalTransaction]:
    """Post many transactions in a handful of statements (a billing run's invoices): those whose
    (source, source_id) is posted already are returned as they are. Returns one per posting."""
    if not postings:
        return []
    checked = [(posting, _validated(posting)) for posting in postings]
    with transaction.atomic():
        keys = {(p.source, p.source_id) for p in postings}
        existing = {
            (txn.source, txn.source_id): txn
            for txn in JournalTransaction.objects.filter(
                source__in={s for s, _ in keys}, source_id__in={i for _, i in keys}
            )
            if (txn.source, txn.source_id) in keys
        }
        fresh: dict[tuple[str, str], tuple[JournalTransaction, list]] = {}
        for posting, entries in checked:
            key = (posting.source, posting.source_id)
            if key not in existing and key not in fresh:
                fresh[key] = (_row(posting), entries)
        try:
            with transaction.atomic():
                JournalTransaction.objects.bulk_create([txn for txn, _ in fresh.values()], batch_size=1000)
        except IntegrityError:
            # another posting of some of these sources committed meanwhile: one at a time
            return [_post(posting) for posting in postings]
        if fresh:
            _write_entries(list(fresh.values()))
    return [existing.get(key) or fresh[key][0] for key in ((p.source, p.source_id) for p in postings)]


def ledger_reverse(
    *, txn: JournalTransaction, reason: str, occurred_at: dt.datetime | None = None
) -> JournalTransaction:
    """Post the negation of `txn` (a correction), once: reversing it again returns the first
    reversal. The reversal is dated `occurred_at` (now by default); the original stays as it was."""
    entries = [
        (entry.account.code, entry.currency, -entry.amount)
        for entry in JournalEntry.objects.filter(transaction=txn).select_related("account").order_by("id")
    ]
    posting = Posting(
        source=REVERSAL_SOURCE, source_id=str(txn.pk), occurred_at=occurred_at or timezone.now(),
        description=f"Reversal of {txn.source}:{txn.source_id}: {reason}"[:300],
        entries=entries, metadata={"reason": reason, "reverses": txn.pk},
    )  # fmt: skip
    return _post(posting, reverses=txn)
