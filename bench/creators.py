"""Creators: a creator's balance (pending, available, paid out, lifetime) with many earnings.

    .venv/bin/python bench/creators.py [--earnings 200000] [--reads 1000]

Same run, same machine: `creator_balance` (two running-balance rows, the running totals row and
the creator's payout entries) for a creator with `--earnings` earnings and as many ledger entries on
their pending account, beside the baseline of one running-balance row (`ledger_balance`) and beside
what summing every earning would cost (the lifetime before running totals). Target (issue 12): a
creator's balance with 1 M entries p99 <= 20 ms (run with --earnings 1000000).
"""

import argparse
import datetime as dt
import time

from _harness import bench_tenant, percentile, setup_django

setup_django()

from django.db import transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.ledger.creators.earnings import _add_totals, pending_account  # noqa: E402
from billing.ledger.creators.models import Creator, Earning  # noqa: E402
from billing.ledger.creators.selectors import creator_balance  # noqa: E402
from billing.ledger.selectors import ledger_balance  # noqa: E402
from billing.ledger.services import Posting, ledger_post_many  # noqa: E402
from billing.memberships.models import Payment  # noqa: E402
from billing.memberships.services import customer_upsert  # noqa: E402

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def seed(creator: Creator, earnings: int) -> None:
    have = Earning.objects.filter(creator=creator).count()
    if have >= earnings:
        return
    print(f"seeding {earnings - have:,} earnings and their postings ...", flush=True)
    fan, _ = customer_upsert(external_id="bench-fan")
    run = f"c{int(time.time())}"
    for first in range(have, earnings, 2000):
        last = min(first + 2000, earnings)
        with transaction.atomic():
            payments = Payment.objects.bulk_create(
                [Payment(customer=fan, provider="sandbox", provider_payment_id=f"{run}-{i}", kind="charge",
                         amount=1000, currency="usd", occurred_at=EPOCH + dt.timedelta(seconds=i))
                 for i in range(first, last)]
            )  # fmt: skip
            Earning.objects.bulk_create(
                [Earning(creator=creator, payment=p, kind="tip", currency="usd", gross=1000, platform_fee=100,
                         fee_bps=1000, net=900, earned_at=p.occurred_at, available_at=p.occurred_at)
                 for p in payments]
            )  # fmt: skip
            ledger_post_many(
                [Posting(source="bench-earning", source_id=f"{run}-{p.pk}", occurred_at=p.occurred_at,
                         description="bench", entries=[("creator_share", "usd", 1000), ("platform_fees", "usd", -100),
                                                       (pending_account(creator.handle), "usd", -900)])
                 for p in payments]
            )  # fmt: skip
            _add_totals(creator_id=creator.pk, currency="usd", earned=900 * (last - first))
        if (first // 2000) % 25 == 24:
            print(f"  {last:,}/{earnings:,}", flush=True)


def _ms(fn, reads: int) -> list[float]:
    out = []
    for _ in range(reads):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--earnings", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=1000)
    args = parser.parse_args()
    tenant, _, _ = bench_tenant("bench-creators")
    with tenant_context(tenant):
        creator = Creator.objects.filter(handle="bench").first() or Creator.objects.create(
            handle="bench", display_name="Bench"
        )
        seed(creator, args.earnings)
        count = Earning.objects.filter(creator=creator).count()
        balance = creator_balance(creator=creator)["usd"]
        assert balance["lifetime"] == balance["pending"] + balance["available"] + balance["paid_out"], balance
        baseline = _ms(
            lambda: ledger_balance(account=pending_account(creator.handle), currency="usd"), args.reads
        )
        ours = _ms(lambda: creator_balance(creator=creator), args.reads)
        summed = _ms(
            lambda: Earning.objects.filter(creator=creator).aggregate(Sum("net")), max(20, args.reads // 50)
        )
    print(f"\na creator with {count:,} earnings ({args.reads:,} reads)")
    for label, samples in (
        ("one running-balance row (baseline)", baseline),
        ("creator_balance (all four figures)", ours),
        ("summing every earning (before totals)", summed),
    ):
        print(f"  {label:<40} p50 {percentile(samples, 50):8.3f} ms   p99 {percentile(samples, 99):8.3f} ms")
    print("  target: p99 <= 20 ms at 1 M entries")


if __name__ == "__main__":
    main()
