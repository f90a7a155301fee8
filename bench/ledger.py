"""The ledger: posting throughput and balance reads.

    .venv/bin/python bench/ledger.py [--postings 5000] [--entries 200000] [--reads 2000]

Same run, same machine:
  - postings/s through `ledger_post` (validation, idempotency key, entries, running balances, the
    deferred balance check at commit), one transaction each, beside a plain INSERT of the same rows
    (the transaction and its two entries, with their balance_after, in one transaction each);
  - the same postings in batches of 500 through `ledger_post_many` (what a billing run does);
  - balance of an account that holds `--entries` entries: now (the running balance row) and at a past
    date (the running balance minus the entries dated after it), p50/p99 over `--reads` reads.
Targets (issue 12): a balance with 1 M entries p99 <= 20 ms (run with --entries 1000000).
"""

import argparse
import datetime as dt
import time

from _harness import bench_tenant, percentile, setup_django

setup_django()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.ledger.models import JournalEntry, LedgerAccount  # noqa: E402
from billing.ledger.selectors import ledger_balance  # noqa: E402
from billing.ledger.services import Posting, ledger_post, ledger_post_many  # noqa: E402

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _posting(run: str, i: int, *, account: str = "receivable") -> Posting:
    return Posting(
        source="bench",
        source_id=f"{run}-{i}",
        occurred_at=EPOCH + dt.timedelta(seconds=i),
        description="bench",
        entries=[(account, "usd", 100 + i % 50), ("deferred_revenue", "usd", -(100 + i % 50))],
    )


def bench_postings(n: int) -> None:
    run = f"p{int(time.time())}"
    started = time.perf_counter()
    for i in range(n):
        ledger_post(**vars(_posting(run, i)))
    service = n / (time.perf_counter() - started)

    run_many = f"m{int(time.time())}"
    started = time.perf_counter()
    for first in range(0, n, 500):
        with transaction.atomic():
            ledger_post_many([_posting(run_many, i) for i in range(first, min(first + 500, n))])
    batched = n / (time.perf_counter() - started)

    accounts = {
        a.code: a.pk for a in LedgerAccount.objects.filter(code__in=["receivable", "deferred_revenue"])
    }
    run_raw = f"r{int(time.time())}"
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i in range(n):
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO ledger_journaltransaction (source, source_id, description, occurred_at, "
                    "created_at, metadata) VALUES ('bench', %s, 'bench', %s, %s, '{}') RETURNING id",
                    [f"{run_raw}-{i}", EPOCH + dt.timedelta(seconds=i), now],
                )
                (txn,) = cursor.fetchone()
                amount = 100 + i % 50
                cursor.executemany(
                    "INSERT INTO ledger_journalentry (transaction_id, account_id, currency, amount, balance_after, "
                    "occurred_at) VALUES (%s, %s, 'usd', %s, 0, %s)",
                    [
                        (txn, accounts["receivable"], amount, EPOCH),
                        (txn, accounts["deferred_revenue"], -amount, EPOCH),
                    ],
                )
    raw = n / (time.perf_counter() - started)
    print(f"\npostings, in-process, {n:,} transactions of two entries")
    print(f"  ledger_post, one transaction each        {service:>9,.0f} postings/s")
    print(f"  ledger_post_many, batches of 500        {batched:>9,.0f} postings/s")
    print(
        f"  baseline: plain INSERT of the same rows   {raw:>9,.0f} postings/s  (ledger_post = {service / raw:.2f}x)"
    )


def bench_balance(entries: int, reads: int) -> None:
    account = "cash:bench"
    have = JournalEntry.objects.filter(account__code=account).count()
    if have < entries:
        print(f"\nposting {entries - have:,} entries to {account} ...", flush=True)
        run = f"b{int(time.time())}"
        for first in range(have, entries, 2000):
            with transaction.atomic():
                ledger_post_many(
                    [_posting(run, i, account=account) for i in range(first, min(first + 2000, entries))]
                )
            if (first // 2000) % 25 == 24:
                print(f"  {first + 2000:,}/{entries:,}", flush=True)
    now_ms, past_ms = [], []
    for _ in range(reads):
        started = time.perf_counter()
        ledger_balance(account=account, currency="usd")
        now_ms.append((time.perf_counter() - started) * 1000)
    total = JournalEntry.objects.filter(account__code=account).count()
    for i in range(min(reads, 200)):
        # a date near the end (few entries after it) and one in the middle (half of them after it)
        at = EPOCH + dt.timedelta(seconds=total - 100 if i % 2 else total // 2)
        started = time.perf_counter()
        ledger_balance(account=account, currency="usd", at=at)
        past_ms.append((time.perf_counter() - started) * 1000)
    print(f"\nbalance of an account with {total:,} entries, {reads:,} reads")
    print(f"  now (running balance)       p50 {percentile(now_ms, 50):7.3f} ms   p99 {percentile(now_ms, 99):7.3f} ms"
          "   target p99 <= 20 ms at 1 M entries")  # fmt: skip
    print(
        f"  at a past date (200 reads)  p50 {percentile(past_ms, 50):7.3f} ms   p99 {percentile(past_ms, 99):7.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postings", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    tenant, _, _ = bench_tenant("bench-ledger")
    with tenant_context(tenant):
        bench_postings(args.postings)
        bench_balance(args.entries, args.reads)


if __name__ == "__main__":
    main()
