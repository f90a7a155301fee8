"""Usage event ingestion: events/s batched and single, beside a raw COPY; usage-query latency.

    .venv/bin/python bench/ingest.py [--batches 200] [--clients 4] [--query-events 10000000]

Same run, same machine:
  - baseline: a raw COPY of the same rows (1,000 per statement) into a same-shaped table with a unique
    index on the event id (no validation, no de-duplication answer, no rollups);
  - in-process: `events_ingest` on batches of 1,000 with 10% duplicates (validation, exactly-once
    keys, COPY into the month partitions, hourly rollup deltas of two meters); then in a second
    tenant where every event burns credits from a grant of its customer's;
  - HTTP under gunicorn (2 sync workers, warmed first): concurrent clients POSTing batches of 1,000 to
    /api/v1/events, 10% of each batch replaying events of an earlier batch: one already answered
    (the usual retry), then one still in flight (the replay waits for the first one's commit); and
    wrk POSTing single events (every 10th a duplicate);
  - usage queries: GET /api/v1/customers/{id}/usage (a month by day) p50/p99 in-process after
    `--query-events` events were ingested (kept in the bench tenant: a re-run tops it up only).
Targets (issue 5): >= 50,000 events/s batched (within 3x of the raw COPY); query p99 <= 100 ms.
"""

import argparse
import collections
import datetime as dt
import gc
import json
import os
import random
import tempfile
import threading
import time
import uuid
from decimal import Decimal

from _harness import bench_tenant, fmt_http, gunicorn, setup_django, summary, wrk

setup_django()

import logging  # noqa: E402

import httpx  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.memberships.models import Customer  # noqa: E402
from billing.memberships.services import customer_upsert  # noqa: E402
from billing.metering.credit_models import MICROS, BurnRate, CreditGrant  # noqa: E402
from billing.metering.credits import burn_rate_create, credit_grant_create  # noqa: E402
from billing.metering.ingest import events_ingest  # noqa: E402
from billing.metering.models import Meter  # noqa: E402
from billing.metering.services import meter_create  # noqa: E402

BATCH = 1000
CUSTOMERS = 1000
SPREAD = [CUSTOMERS]  # how many customers the generated events are spread over (--customers)
MODELS = ["gpt-4o", "claude-sonnet", "llama-70b"]


def seed(tenant) -> None:
    with tenant_context(tenant):
        have = Customer.objects.filter(external_id__startswith="ing-").count()
        for i in range(have, CUSTOMERS):
            customer_upsert(external_id=f"ing-{i}")
        if not Meter.objects.filter(code="bench-tokens").exists():
            meter_create(
                code="bench-tokens", event_type="llm.call", aggregation="sum", value_property="tokens"
            )
        if not Meter.objects.filter(code="bench-calls").exists():
            meter_create(code="bench-calls", event_type="llm.call", aggregation="count")


def seed_credits(tenant) -> None:
    """The same customers and meters, a burn rate on the token meter and a large grant for every
    customer, so each event burns (the AI-credits case: every batch writes a ledger row, a grant
    and an account per customer it touches)."""
    seed(tenant)
    with tenant_context(tenant):
        if not BurnRate.objects.exists():
            burn_rate_create(meter_code="bench-tokens", credits_per_unit=Decimal("0.001"),
                             effective_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))  # fmt: skip
        granted = set(CreditGrant.objects.values_list("customer__external_id", flat=True))
        for customer in Customer.objects.filter(external_id__startswith="ing-").exclude(
            external_id__in=granted
        ):
            credit_grant_create(customer=customer, amount=10**9 * MICROS,
                                effective_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))  # fmt: skip


def make_events(
    n: int, *, start: dt.datetime, span_hours: float = 1.0, prefix: str | None = None
) -> list[dict]:
    prefix = prefix or uuid.uuid4().hex[:10]
    events = []
    for i in range(n):
        when = start + dt.timedelta(seconds=random.random() * span_hours * 3600)
        events.append(
            {
                "id": f"{prefix}-{i}",
                "customer": f"ing-{random.randrange(SPREAD[0])}",
                "type": "llm.call",
                "timestamp": when.isoformat().replace("+00:00", "Z"),
                "properties": {"tokens": random.randrange(1, 4000), "model": random.choice(MODELS)},
            }
        )
    return events


def with_duplicates(events: list[dict], seen: list[dict]) -> list[dict]:
    """Replace 10% of the batch with events already sent (same ids)."""
    batch = list(events)
    for i in range(0, len(batch), 10):
        if seen:
            batch[i] = random.choice(seen)
    return batch


def raw_copy_baseline(tenant, batches: list[list[dict]]) -> float:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_event")
        cursor.execute(
            "CREATE TABLE bench_raw_event (event_id text PRIMARY KEY, customer text NOT NULL, type text NOT NULL, "
            "ts timestamptz NOT NULL, value numeric(38, 9) NOT NULL, properties jsonb NOT NULL)"
        )
        rows = 0
        started = time.perf_counter()
        for batch in batches:
            with cursor.copy("COPY bench_raw_event FROM STDIN") as copy:
                for e in batch:
                    copy.write_row(
                        (e["id"], e["customer"], e["type"], e["timestamp"], 1, json.dumps(e["properties"]))
                    )
            connection.commit() if not connection.get_autocommit() else None
            rows += len(batch)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_raw_event")
    return rows / elapsed


def in_process(tenant, batches: list[list[dict]]) -> tuple[float, int, int]:
    inserted = duplicates = 0
    with tenant_context(tenant):
        started = time.perf_counter()
        for batch in batches:
            result = events_ingest(events=batch)
            inserted += result.inserted
            duplicates += result.duplicates
            assert not result.rejected, result.rejected[:3]
        elapsed = time.perf_counter() - started
    return sum(len(b) for b in batches) / elapsed, inserted, duplicates


def batch_bodies(n: int, *, lag: int, start: dt.datetime) -> list[bytes]:
    """n request bodies of BATCH events, 10% of each a replay of events of the batch `lag` places
    before it in sending order (lag 1: the batch just before, likely still in flight)."""
    fresh = [make_events(BATCH, start=start) for _ in range(n)]
    return [json.dumps({"events": with_duplicates(b, fresh[i - lag] if i >= lag else [])}).encode()
            for i, b in enumerate(fresh)]  # fmt: skip


def http_batched(base: str, host: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    """POST the bodies in order from `clients` threads; events/s over the whole run."""
    queue = collections.deque(bodies)
    lock = threading.Lock()
    totals = {"events": 0, "inserted": 0, "duplicates": 0, "errors": 0}

    def client():
        with httpx.Client(base_url=base, headers={"Host": host, "Authorization": f"Bearer {key}",
                                                  "Content-Type": "application/json"}, timeout=60) as http:  # fmt: skip
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.popleft()
                response = http.post("/api/v1/events", content=body)
                with lock:
                    if response.status_code != 202:
                        totals["errors"] += 1
                        continue
                    answer = response.json()
                    totals["events"] += answer["inserted"] + answer["duplicates"]
                    totals["inserted"] += answer["inserted"]
                    totals["duplicates"] += answer["duplicates"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if totals["errors"]:
        print(f"  !! {totals['errors']} batches failed")
    return totals["events"] / elapsed, totals["inserted"], totals["duplicates"]


def single_event_lua(host: str, key: str, timestamp: str) -> str:
    prefix = uuid.uuid4().hex[:10]
    script = f"""
local i = 0
request = function()
  i = i + 1
  local id = i
  if i % 10 == 0 then id = i - 5 end
  local body = '{{"id": "{prefix}-' .. id .. '", "customer": "ing-' .. (i % {CUSTOMERS}) .. '", "type": "llm.call", "timestamp": "{timestamp}", "properties": {{"tokens": 10}}}}'
  return wrk.format("POST", "/api/v1/events", {{["Host"] = "{host}", ["Authorization"] = "Bearer {key}", ["Content-Type"] = "application/json"}}, body)
end
"""
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    handle.write(script)
    handle.close()
    return handle.name


def top_up_for_queries(tenant, target: int) -> int:
    """Ingest events spread over the last 60 days until the bench tenant holds `target`."""
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metering_event_key")
        have = cursor.fetchone()[0]
    if have >= target:
        return have
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    started, first = time.perf_counter(), have
    with tenant_context(tenant):
        while have < target:
            n = min(10_000, target - have)
            events_ingest(events=make_events(n, start=start, span_hours=60 * 24 - 1))
            have += n
            rate = (have - first) / max(1e-9, time.perf_counter() - started)
            print(f"\r  seeding query data {have:,}/{target:,} events ({rate:,.0f}/s)", end="", flush=True)
    print()
    return have


def queries(tenant, host: str, key: str, n: int) -> list[float]:
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")
    now = dt.datetime.now(dt.UTC)
    start = (now - dt.timedelta(days=30)).isoformat().replace("+00:00", "Z")
    samples = []
    for _ in range(n):
        customer = f"ing-{random.randrange(CUSTOMERS)}"
        url = f"/api/v1/customers/{customer}/usage?meter=bench-tokens&window=day&from={start}"
        began = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.content[:300]
    return samples


def raw_queries(tenant, n: int) -> list[float]:
    """Baseline: the same answer (a customer's month by day) computed from the raw events, which is
    what the rollups spare every query."""
    now = dt.datetime.now(dt.UTC)
    samples = []
    with tenant_context(tenant), connection.cursor() as cursor:
        for _ in range(n):
            customer = f"ing-{random.randrange(CUSTOMERS)}"
            began = time.perf_counter()
            cursor.execute(
                "SELECT date_trunc('day', ts AT TIME ZONE 'UTC'), sum((properties->>'tokens')::numeric) "
                "FROM metering_event WHERE customer = %s AND type = 'llm.call' AND ts >= %s AND ts < %s GROUP BY 1",
                [customer, now - dt.timedelta(days=30), now],
            )
            cursor.fetchall()
            samples.append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 per measurement")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--tenant", default="bench-ingest", help="bench tenant (query data accumulates in it)"
    )
    parser.add_argument(
        "--customers", type=int, default=CUSTOMERS, help="customers the events are spread over"
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    gc.collect()
    gc.freeze()  # as monetize/wsgi.py does in every web worker once the app is loaded
    SPREAD[0] = max(1, min(CUSTOMERS, args.customers))
    tenant, host, key = bench_tenant(args.tenant)
    seed(tenant)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # events arrive live: within the last hour
    print(
        f"batches of {BATCH:,} events, 10% duplicates; events spread over {SPREAD[0]:,} customers within the last "
        "hour; two meters (sum, count) on the event type\n"
    )

    baseline_batches = [make_events(BATCH, start=now) for _ in range(args.batches)]
    raw = raw_copy_baseline(tenant, baseline_batches)
    print(f"  baseline: raw COPY into a unique-indexed table   {raw:>10,.0f} rows/s")

    fresh = [make_events(BATCH, start=now) for _ in range(args.batches)]
    batches = [with_duplicates(b, fresh[i - 1] if i else []) for i, b in enumerate(fresh)]
    rate, inserted, dups = in_process(tenant, batches)
    print(f"  in-process events_ingest                        {rate:>10,.0f} events/s   "
          f"({inserted:,} inserted, {dups:,} duplicates; {rate / raw:.2f}x of raw COPY)")  # fmt: skip
    credits_tenant, _, _ = bench_tenant(f"{args.tenant}-credits")
    seed_credits(credits_tenant)
    burning = [make_events(BATCH, start=now) for _ in range(max(10, args.batches // 4))]
    rate, inserted, dups = in_process(credits_tenant, burning)
    print(f"  in-process, every event burning credits          {rate:>9,.0f} events/s   "
          f"({inserted:,} inserted; {rate / raw:.2f}x of raw COPY)")  # fmt: skip

    # replays usually come once the first attempt has been answered (a client retrying after a
    # timeout, a queue redelivering): those duplicates come from batches sent 2 x clients earlier.
    # A replay of a batch still in flight must wait for that batch's commit (the key decides which
    # one stores the event): measured apart, with duplicates of the batch just before.
    answered = batch_bodies(args.batches, lag=2 * args.clients, start=now)
    in_flight = batch_bodies(args.batches, lag=1, start=now)
    workers = int(os.environ.get("WEB_CONCURRENCY", 2))
    with gunicorn(workers=workers) as base:
        # the port answers before the workers have imported the app: let every worker boot and
        # serve a batch first, so the figure is the steady state, not gunicorn's start-up
        warm = [json.dumps({"events": make_events(BATCH, start=now)}).encode() for _ in range(2 * workers)]
        http_batched(base, host, key, warm, args.clients)
        for name, bodies in (
            ("replays of answered batches", answered),
            ("replays of batches in flight", in_flight),
        ):
            rate, inserted, dups = http_batched(base, host, key, bodies, args.clients)
            print(f"  HTTP batched ({args.clients} clients, {workers} workers), {name:<29} {rate:>8,.0f} events/s   "
                  f"({inserted:,} inserted, {dups:,} duplicates; {rate / raw:.2f}x of raw COPY)")  # fmt: skip
        lua = single_event_lua(host, key, now.isoformat().replace("+00:00", "Z"))
        single = wrk(f"{base}/api/v1/events", headers={}, seconds=args.seconds, connections=8, lua=lua)
        os.unlink(lua)
        print("  " + fmt_http("HTTP single events (wrk, 8 conns)", single))

    if args.query_events:
        total = top_up_for_queries(tenant, args.query_events)
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM metering_rollup")
            rollups = cursor.fetchone()[0]
        samples = queries(tenant, host, key, args.queries)
        print(f"\nusage query (a customer's month by day) over {total:,} events / {rollups:,} hourly rollups")
        print(f"  from the rollups (GET /api/v1/customers/{{id}}/usage)  {summary(samples)}")
        baseline = raw_queries(tenant, max(3, args.queries // 100))
        print(f"  baseline: the same sums over raw events (SQL)   {summary(baseline)}")
    print("\n  targets: >= 50,000 events/s batched (within 3x of raw COPY); query p99 <= 100 ms")


if __name__ == "__main__":
    main()
