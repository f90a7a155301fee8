"""The billing engine: rating, a billing run, the upcoming invoice.

    .venv/bin/python bench/invoicing.py [--customers 10000] [--quotes 100000] [--seconds 5]

Same run, same machine:
  - rating: `rate()` of a three-tier graduated price with a fractional tier (quotes/s, in-process)
    beside a plain integer multiplication `quantity * unit_amount` (the floor any rating sits on);
  - period close: `period_close_many` closing one period for N customers, each with a monthly fee and
    two usage prices (a graduated token price and a per-unit call price) on a month of usage, in
    batches of 500 (what the billing run does), beside the same close one invoice at a time
    (`period_close`) on a sample, extrapolated to N;
  - the upcoming invoice over HTTP (gunicorn, 2 gthread workers, wrk): GET
    /api/v1/customers/{id}/invoices/upcoming for a customer with a month of hourly usage beside the
    trivial authenticated GET /api/v1/me; client-side p50/p99 and server-side p99 from gunicorn's
    per-request timing.
Targets (issue 11): 10,000 customers closed in <= 60 s; upcoming p99 <= 50 ms.
"""

import argparse
import datetime as dt
import random
import tempfile
import time
from decimal import Decimal

from _harness import bench_tenant, gunicorn, percentile, server_side_ms, setup_django, wrk

setup_django()

from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.invoicing.close import BilledSubscription, PeriodToClose, period_close, period_close_many  # noqa: E402
from billing.invoicing.rating import PriceTerms, TierRow, rate  # noqa: E402
from billing.memberships.models import Customer, Membership  # noqa: E402
from billing.memberships.services import customer_upsert  # noqa: E402
from billing.metering.ingest import events_ingest  # noqa: E402
from billing.tiers.catalog import catalog_import  # noqa: E402
from billing.tiers.models import Price  # noqa: E402

CATALOG = """
currency: usd
features:
  tokens: {name: Tokens, kind: metered, unit: token}
tiers:
  - code: free
    name: Free
    default: true
  - code: pro
    name: Pro
    prices:
      - {code: pro-monthly, unit_amount: 2900, interval: month}
      - code: pro-tokens
        interval: month
        meter: tokens
        model: graduated
        tiers:
          - {up_to: 1000, unit_amount: 0}
          - {up_to: 10000, unit_amount: 2}
          - {up_to: null, unit_amount_decimal: "0.25", flat_amount: 500}
      - {code: pro-calls, interval: month, meter: calls, model: per_unit, unit_amount_decimal: "0.1"}
meters:
  tokens: {name: Tokens, event_type: llm.call, aggregation: sum, value_property: tokens, feature: tokens}
  calls: {name: Calls, event_type: llm.call, aggregation: count}
"""
BATCH = 500


def bench_rating(quotes: int) -> None:
    terms = PriceTerms(
        model="graduated",
        currency="usd",
        unit_amount=Decimal(0),
        tiers=(
            TierRow(up_to=1000, unit_amount=Decimal(0), flat_amount=0),
            TierRow(up_to=10000, unit_amount=Decimal(2), flat_amount=0),
            TierRow(up_to=None, unit_amount=Decimal("0.25"), flat_amount=500),
        ),
    )
    rng = random.Random(7)
    quantities = [rng.randrange(0, 200_000) for _ in range(quotes)]
    started = time.perf_counter()
    for quantity in quantities:
        rate(terms, quantity)
    rating = quotes / (time.perf_counter() - started)
    started = time.perf_counter()
    unit = 2
    for quantity in quantities:
        _ = quantity * unit
    baseline = quotes / (time.perf_counter() - started)
    print(f"\nrating, in-process, {quotes:,} quotes")
    print(f"  graduated (3 tiers, fractional)   {rating:>12,.0f} quotes/s")
    print(
        f"  baseline: quantity * unit_amount  {baseline:>12,.0f} /s   (rating costs {baseline / rating:,.0f}x)"
    )


def seed(tenant, customers: int, start: dt.datetime) -> None:
    """N customers with usage on both meters in the period (two events each, in one hour of it)."""
    with tenant_context(tenant):
        catalog_import(text=CATALOG)
        have = Customer.objects.filter(external_id__startswith="inv-").count()
        if have >= customers:
            return
        print(f"seeding {customers - have:,} customers with usage ...", flush=True)
        stamp = (start + dt.timedelta(days=3)).isoformat()
        for first in range(have, customers, 1000):
            chunk = range(first, min(first + 1000, customers))
            events = [
                {"id": f"inv-{i}-{n}", "customer": f"inv-{i}", "type": "llm.call", "timestamp": stamp,
                 "properties": {"tokens": 400 + (i * 37 + n * 991) % 30_000}}
                for i in chunk for n in range(2)
            ]  # fmt: skip
            for j in range(0, len(events), 1000):
                events_ingest(
                    events=events[j : j + 1000], create_customers=True, now=start + dt.timedelta(days=4)
                )
            print(f"  {chunk.stop:,}/{customers:,}", flush=True)


def bench_close(tenant, customers: int, start: dt.datetime, end: dt.datetime) -> None:
    run = f"{int(time.time())}"
    items = [
        PeriodToClose(
            sub=BilledSubscription("sandbox", f"bench-{run}-{i}", f"inv-{i}", "pro-monthly", 1),
            period_start=start,
            period_end=end,
            renews=True,
        )
        for i in range(customers)
    ]
    print(f"\nperiod close: {customers:,} customers, a fee + two usage prices, batches of {BATCH}")
    with tenant_context(tenant):
        started = time.perf_counter()
        total = 0
        for first in range(0, customers, BATCH):
            invoices = period_close_many(items[first : first + BATCH])
            total += sum(invoice.total for invoice in invoices)
            if (first // BATCH) % 4 == 3:
                print(
                    f"  {first + BATCH:,}/{customers:,}  {time.perf_counter() - started:6.1f} s", flush=True
                )
        batched = time.perf_counter() - started
        again = time.perf_counter()
        period_close_many(items[:BATCH])  # closing the same periods again finds them
        repeat = time.perf_counter() - again
        sample = min(300, customers)
        singles = [
            PeriodToClose(
                sub=BilledSubscription("sandbox", f"single-{run}-{i}", f"inv-{i}", "pro-monthly", 1),
                period_start=start, period_end=end, renews=True,
            )
            for i in range(sample)
        ]  # fmt: skip
        started = time.perf_counter()
        for item in singles:
            period_close(
                sub=item.sub, period_start=item.period_start, period_end=item.period_end, renews=True
            )
        single = (time.perf_counter() - started) / sample
    print(f"  billing run (batched)          {batched:7.1f} s   {customers / batched:8,.0f} invoices/s   "
          f"target <= 60 s for 10,000")  # fmt: skip
    print(f"  baseline: one at a time        {single * customers:7.1f} s   {1 / single:8,.0f} invoices/s "
          f"(extrapolated from {sample})")  # fmt: skip
    print(f"  closing {BATCH} closed periods again  {repeat * 1000:7.0f} ms (finds them, issues nothing)")
    print(f"  invoiced: ${total / 100:,.2f} over {customers:,} invoices")


def bench_upcoming(tenant, host: str, key: str, seconds: int) -> None:
    now = timezone.now()
    with tenant_context(tenant):
        customer, _ = customer_upsert(external_id="upcoming-1")
        price = Price.objects.get(code="pro-monthly")
        if not Membership.objects.filter(customer=customer).exists():
            Membership.objects.create(
                customer=customer, tier=price.tier, price=price, status="active", quantity=1,
                started_at=now - dt.timedelta(days=29), current_period_start=now - dt.timedelta(days=29),
                current_period_end=now + dt.timedelta(days=1),
            )  # fmt: skip
            hours = [now - dt.timedelta(days=29) + dt.timedelta(hours=h) for h in range(29 * 24)]
            events = [
                {"id": f"up-{h}-{n}", "customer": "upcoming-1", "type": "llm.call", "timestamp": at.isoformat(),
                 "properties": {"tokens": 50 + n}}
                for h, at in enumerate(hours) for n in range(3)
            ]  # fmt: skip
            for j in range(0, len(events), 1000):
                events_ingest(events=events[j : j + 1000], now=now)
    auth = {"Authorization": f"Bearer {key}", "Host": host}
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    path = "/api/v1/customers/upcoming-1/invoices/upcoming"
    args = ["--worker-class", "gthread", "--threads", "4"]
    print(f"\nupcoming invoice over HTTP: gunicorn 2 gthread workers, wrk, {seconds} s each")
    for connections in (1, 4):  # one client at a time, then more clients than cores
        with open(log, "w"):
            pass
        with gunicorn(workers=2, args=args, access_log=log) as base:
            wrk(f"{base}{path}", headers=auth, seconds=1, connections=connections)  # warm-up
            me = wrk(f"{base}/api/v1/me", headers=auth, seconds=seconds, connections=connections)
            upcoming = wrk(f"{base}{path}", headers=auth, seconds=seconds, connections=connections)
        server = server_side_ms(log, path)
        server_me = server_side_ms(log, "/api/v1/me")
        print(f"  {connections} connection{'s' if connections > 1 else ''}:")
        for name, result, samples in (("baseline: GET /api/v1/me", me, server_me),
                                      ("GET …/invoices/upcoming", upcoming, server)):  # fmt: skip
            print(f"    {name:<26} {result['rps']:>7.0f} req/s   p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms"
                  f"   server p99 {percentile(samples, 99):6.2f} ms"
                  + (f"   non-2xx {result['non2xx']}" if result["non2xx"] else ""))  # fmt: skip
    print("  target: upcoming p99 <= 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--quotes", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    tenant, host, key = bench_tenant("bench-invoicing")
    end = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=31)
    bench_rating(args.quotes)
    seed(tenant, args.customers, start)
    bench_close(tenant, args.customers, start, end)
    if not args.skip_http:
        bench_upcoming(tenant, host, key, args.seconds)


if __name__ == "__main__":
    main()
