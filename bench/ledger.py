"""The ledger: posting throughput and balance reads.

    .venv/bin/python bench/ledger.py [--postings 5000] [--entries 200000] [--reads 2000] [--lines 100000]

Same run, same machine:
  - postings/s through `ledger_post` (validation, idempotency key, entries, running balances, the
    deferred balance check at commit), one transaction each, beside a plain INSERT of the same rows
    (the transaction and its two entries, with their balance_after, in one transaction each);
  - the same postings in batches of 500 through `ledger_post_many` (what a billing run does);
  - balance of an account that holds `--entries` entries: now (the running balance row) and at a past
    date (the running balance minus the entries dated after it), p50/p99 over `--reads` reads.
  - daily revenue recognition of `--lines` open invoice lines (one run of a day: every line moves,
    one posting), beside a plain UPDATE of the same rows and a plain INSERT of as many entries;
    then the same day again (posts nothing).
Targets (issue 12): a balance with 1 M entries p99 <= 20 ms (run with --entries 1000000); daily
recognition for 100,000 invoice lines <= 60 s.
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


def bench_recognition(lines: int) -> None:
    from django.db.models import F, Max

    from billing.invoicing.models import InvoiceLine
    from billing.invoicing.services import invoice_draft_create
    from billing.ledger.models import RecognitionRun, RecognitionSchedule
    from billing.ledger.recognition import recognition_run
    from billing.memberships.services import customer_upsert

    last = RecognitionRun.objects.aggregate(last=Max("day"))["last"]
    day = max(last + dt.timedelta(days=1) if last else EPOCH.date(), EPOCH.date() + dt.timedelta(days=40))
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(days=10)
    print(f"\nsetting up {lines:,} invoice lines (drafts' lines, 1,000 per invoice) ...", flush=True)
    RecognitionSchedule.objects.filter(recognized__lt=F("amount")).update(amount=F("recognized"))
    customer, _ = customer_upsert(external_id="bench-recognition")
    per_invoice = 1000
    for first in range(0, lines, per_invoice):
        with transaction.atomic():
            invoice, _ = invoice_draft_create(customer=customer, currency="usd", lines=[])
            made = InvoiceLine.objects.bulk_create(
                [
                    InvoiceLine(invoice=invoice, kind="fee", description="bench", amount=1000 + i % 9000)
                    for i in range(first, min(first + per_invoice, lines))
                ]
            )
            RecognitionSchedule.objects.bulk_create(
                [
                    RecognitionSchedule(
                        invoice=invoice,
                        line=line,
                        currency="usd" if i % 10 else "eur",
                        amount=line.amount,
                        basis_start=start + dt.timedelta(minutes=i % 1440),
                        period_end=start + dt.timedelta(days=30),
                    )  # fmt: skip
                    for i, line in enumerate(made)
                ],
                batch_size=5000,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_recognitionschedule")

    started = time.perf_counter()
    run = recognition_run(day=day)
    took = time.perf_counter() - started
    started = time.perf_counter()
    recognition_run(day=day)
    again = time.perf_counter() - started

    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "UPDATE ledger_recognitionschedule SET recognized_through = recognized_through"
            " WHERE recognized < amount AND basis_start < %s",
            [start + dt.timedelta(days=11)],
        )
        updated = cursor.rowcount
        update_s = time.perf_counter() - started
        cursor.execute("CREATE TEMP TABLE bench_entries (LIKE ledger_journalentry) ON COMMIT DROP")
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO bench_entries (id, transaction_id, account_id, currency, amount, balance_after,"
            " occurred_at) SELECT g, 1, 1, 'usd', g, g, now() FROM generate_series(1, %s) g",
            [lines],
        )
        insert_s = time.perf_counter() - started
    print(f"\ndaily recognition, {run.lines:,} open invoice lines, one day (UTC)")
    print(f"  recognition_run (lines moved, one posting)  {took:8.2f} s   target <= 60 s")
    print(f"  the same day again (posts nothing)           {again * 1000:8.1f} ms")
    print(f"  baseline: plain UPDATE of the same {updated:,} rows  {update_s:8.2f} s")
    print(f"  baseline: plain INSERT of {lines:,} entries        {insert_s:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postings", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--only", choices=["postings", "balance", "recognition"])
    args = parser.parse_args()
    tenant, _, _ = bench_tenant("bench-ledger")
    with tenant_context(tenant):
        if args.only in (None, "postings"):
            bench_postings(args.postings)
        if args.only in (None, "balance"):
            bench_balance(args.entries, args.reads)
        if args.only in (None, "recognition"):
            bench_recognition(args.lines)


if __name__ == "__main__":
    main()
