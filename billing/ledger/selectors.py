"""Ledger reads: balances (now, from the running balance; at a past date, exact) and the journal."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Q, QuerySet, Sum

from billing.ledger.exceptions import TransactionNotFound
from billing.ledger.models import AccountBalance, DailyTotal, JournalEntry, JournalTransaction, LedgerAccount


def ledger_balance(*, account: LedgerAccount | str, currency: str, at: dt.datetime | None = None) -> int:
    """The balance of `account` in `currency` (signed minor units, debit positive): now, the running
    balance (one row read, however many entries); at a past date, the running balance less the
    entries dated after it (exact even when an entry was posted after later-dated ones)."""
    code = account.code if isinstance(account, LedgerAccount) else account
    row = (
        AccountBalance.objects.filter(account__code=code, currency=currency)
        .values_list("balance", "account_id")
        .first()
    )
    if row is None:
        return 0
    balance, account_id = row
    if at is None:
        return balance
    later = JournalEntry.objects.filter(
        account_id=account_id, currency=currency, occurred_at__gt=at
    ).aggregate(total=Sum("amount"))["total"]
    return balance - (later or 0)


def ledger_balances(*, at: dt.datetime | None = None) -> dict[int, dict[str, int]]:
    """Every account's balances per currency ({account id: {currency: balance}}), now or at `at`."""
    balances: dict[int, dict[str, int]] = defaultdict(dict)
    for account_id, currency, balance in AccountBalance.objects.values_list(
        "account_id", "currency", "balance"
    ):
        balances[account_id][currency] = balance
    if at is not None:
        later = (
            JournalEntry.objects.filter(occurred_at__gt=at)
            .values("account_id", "currency")
            .annotate(total=Sum("amount"))
            .values_list("account_id", "currency", "total")
        )
        for account_id, currency, total in later:
            balances[account_id][currency] -= total
    return balances


def ledger_daily_debits(
    *, source: str, start: dt.date, end: dt.date, codes: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()
) -> list[tuple[str, str, dt.date, int]]:
    """(account code, currency, UTC day, debits) for each day from `start` to `end` (both included)
    on which postings from `source` debited an account named in `codes` or starting with one of
    `prefixes`: the sum of those entries' positive amounts, read from the daily totals (a row per
    account and day, however many entries)."""
    accounts = Q(account__code__in=codes)
    for prefix in prefixes:
        accounts |= Q(account__code__startswith=prefix)
    return list(
        DailyTotal.objects.filter(accounts, source=source, day__gte=start, day__lte=end, debits__gt=0)
        .values_list("account__code", "currency", "day")
        .annotate(total=Sum("debits"))
        .order_by()
    )


def ledger_account_list() -> QuerySet[LedgerAccount]:
    return LedgerAccount.objects.order_by("code")


def ledger_transaction_list(
    *,
    account: str | None = None,
    source: str | None = None,
    occurred_from: dt.datetime | None = None,
    occurred_to: dt.datetime | None = None,
) -> QuerySet[JournalTransaction]:
    """Transactions, filtered by an account they touch, their source, and a date range
    (`occurred_from` inclusive, `occurred_to` exclusive)."""
    query = Q()
    if account:
        query &= Q(pk__in=JournalEntry.objects.filter(account__code=account).values("transaction_id"))
    if source:
        query &= Q(source=source)
    if occurred_from is not None:
        query &= Q(occurred_at__gte=occurred_from)
    if occurred_to is not None:
        query &= Q(occurred_at__lt=occurred_to)
    return JournalTransaction.objects.filter(query)


def ledger_transaction_get(*, transaction_id: int) -> JournalTransaction:
    txn = JournalTransaction.objects.filter(pk=transaction_id).first()
    if txn is None:
        raise TransactionNotFound(f"No ledger transaction {transaction_id}.", details={"id": transaction_id})
    return txn


def ledger_entries(*, txn: JournalTransaction) -> list[JournalEntry]:
    return list(JournalEntry.objects.filter(transaction=txn).select_related("account").order_by("id"))
