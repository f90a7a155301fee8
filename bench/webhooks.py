"""Provider webhooks in: ack latency, receipts/s, and receipt → applied with one live worker.

    .venv/bin/python bench/webhooks.py [--seconds 5] [--connections 8] [--events 20000] [--applied 300]

Same run, same machine:
  - HTTP under gunicorn (2 sync workers) with wrk: POST /webhooks/sandbox/ with distinct signed
    events (10% of them redeliveries), beside GET /healthz (no database, no signature) as baseline;
    server-side p50/p99 from gunicorn's own timing;
  - receipt → applied: one Celery worker process (`--pool solo`: the process that applies is the
    one consuming, no prefork child); subscription events sent one after another;
    per event, the inbox row's processed_at minus received_at.
Targets (issue 4): ack p99 <= 20 ms, applied p99 <= 1 s, >= 500 receipts/s.
"""

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time

from _harness import ROOT, bench_tenant, fmt_http, gunicorn, server_side_ms, setup_django, summary, wrk

setup_django()

from django.db.models import F  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.inbox.models import InboxEvent  # noqa: E402
from billing.providers.sandbox import SandboxProvider  # noqa: E402
from billing.providers.services import provider_account_upsert  # noqa: E402
from billing.tiers.catalog import catalog_import  # noqa: E402


def lua_for(path: str, host: str, deliveries: list[tuple[bytes, dict]]) -> str:
    import json

    lines = ["local reqs = {"]
    for body, headers in deliveries:
        hdrs = ", ".join(
            f"[{json.dumps(k)}] = {json.dumps(v)}"
            for k, v in {**headers, "Host": host, "Content-Type": "application/json"}.items()
        )
        lines.append(f"  wrk.format('POST', {json.dumps(path)}, {{{hdrs}}}, {json.dumps(body.decode())}),")
    lines += ["}", "local i = 0", "request = function()", "  i = i % #reqs + 1", "  return reqs[i]", "end"]
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    handle.write("\n".join(lines))
    handle.close()
    return handle.name


def sub_payload(event_id: str, customer: str, minute: int) -> dict:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
    return {
        "id": event_id, "type": "subscription.updated", "created_at": at.isoformat(),
        "data": {"subscription_id": f"sub_{customer}", "status": "active", "customer": customer, "price": "team-monthly",
                 "quantity": 1, "period_start": at.isoformat(), "period_end": (at + dt.timedelta(days=30)).isoformat()},
    }  # fmt: skip


def _sequential(base: str, host: str, adapter, run: str, *, n: int) -> list[float]:
    """Ack latency as one provider sees it: one delivery at a time over one keep-alive client."""
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    samples = []
    with httpx.Client(base_url=base, headers={"Host": host}, timeout=10) as client:
        for i in range(n):
            body, headers = adapter.sign(
                payload={"id": f"evt_{run}_seq_{i}", "type": "checkout.viewed", "data": {}}
            )
            started = time.perf_counter()
            response = client.post(
                "/webhooks/sandbox/", content=body, headers={**headers, "Content-Type": "application/json"}
            )
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code < 300, response.status_code
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--applied", type=int, default=200)
    args = parser.parse_args()
    tenant, host, _ = bench_tenant()
    run = str(int(time.time()))
    with tenant_context(tenant):
        catalog_import(text=(ROOT / "config" / "tiers" / "ci-service.yaml").read_text())
        adapter = SandboxProvider(webhook_secret=provider_account_upsert(provider="sandbox").webhook_secret)
        # events the portal stores but does not act on: the ack path alone
        distinct = int(args.events * 0.9)
        deliveries = [
            adapter.sign(payload={"id": f"evt_{run}_{i}", "type": "checkout.viewed", "data": {}})
            for i in range(distinct)
        ]
        deliveries += deliveries[: args.events - distinct]  # 10% redeliveries
    lua = lua_for("/webhooks/sandbox/", host, deliveries)
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    print(f"\nHTTP: gunicorn, 2 sync workers, wrk {args.connections} connections, {args.seconds} s each")
    with gunicorn(workers=2, access_log=log, extra_env={"CELERY_TASK_ALWAYS_EAGER": "0"}) as base:
        wrk(f"{base}/healthz", headers={"Host": host}, seconds=1, connections=args.connections)
        # each worker's first deliveries pay one-off start-up costs (URLconf, broker connection, imports:
        # ~200 ms once per worker); warm them so the figures are the steady state
        _sequential(base, host, adapter, run + "-warm", n=20)
        health = wrk(
            f"{base}/healthz", headers={"Host": host}, seconds=args.seconds, connections=args.connections
        )
        hooks = wrk(
            f"{base}/webhooks/sandbox/",
            headers={},
            seconds=args.seconds,
            connections=args.connections,
            lua=lua,
        )
        time.sleep(0.5)
        sequential = _sequential(base, host, adapter, run, n=1000)
    print("  " + fmt_http("POST /webhooks/sandbox/ (ack)", hooks))
    print("  " + fmt_http("GET /healthz (baseline)", health))
    print("  server-side (gunicorn %(D)s)")
    for path in ("/webhooks/sandbox/", "/healthz"):
        print(f"  {path:<28} {summary(server_side_ms(log, path))}")
    print("  client-side, one connection, one request at a time (the provider's view of an ack)")
    print(f"  {'/webhooks/sandbox/':<28} {summary(sequential)}")
    os.unlink(lua)
    os.unlink(log)

    # receipt → applied with one live worker
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "monetize.settings"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "monetize", "worker", "--pool", "solo", "--queues", "inbox", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "-n", f"bench-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from django.test import Client

        from monetize.celery import app

        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5) and time.monotonic() < deadline:
            time.sleep(0.2)
        client = Client(HTTP_HOST=host)
        with tenant_context(tenant):
            # let the worker drain what the ack run enqueued, so the figure is latency, not backlog
            deadline = time.monotonic() + 180
            while InboxEvent.objects.filter(status="pending").exists() and time.monotonic() < deadline:
                print(
                    f"\rdraining the ack run's backlog: {InboxEvent.objects.filter(status='pending').count():>6} pending",
                    end="",
                    flush=True,
                )
                time.sleep(1)
            print()
            first = InboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

        def send(i: int, tag: str) -> None:
            body, headers = adapter.sign(payload=sub_payload(f"evt_{run}_{tag}_{i}", f"bench-{i % 50}", i))
            meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
            client.post("/webhooks/sandbox/", body, content_type="application/json", **meta)

        def wait_applied(tag: str):
            with tenant_context(tenant):
                rows = InboxEvent.objects.filter(id__gt=first, event_id__contains=f"_{tag}_")
                deadline = time.monotonic() + 120
                while rows.filter(processed_at__isnull=True).exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                done = rows.filter(processed_at__isnull=False)
                lags = [
                    lag.total_seconds() * 1000
                    for lag in done.annotate(lag=F("processed_at") - F("received_at")).values_list(
                        "lag", flat=True
                    )
                ]
                return lags, rows.filter(processed_at__isnull=True).count()

        # latency at a steady 20 events/s (a busy tenant), well under one worker's capacity
        for i in range(args.applied):
            send(i, "lat")
            time.sleep(0.05)
        lags, unprocessed = wait_applied("lat")
        # capacity: a burst sent as fast as possible, then the time until all are applied
        started = time.monotonic()
        for i in range(args.applied):
            send(i, "burst")
        burst_lags, burst_unprocessed = wait_applied("burst")
        capacity = args.applied / (time.monotonic() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    print("\nreceipt → applied, one worker process (subscription events: membership + history + cache)")
    print(f"  at 20 events/s         {summary(lags)}   unapplied: {unprocessed}")
    print(f"  burst of {args.applied}         {summary(burst_lags)}   unapplied: {burst_unprocessed}")
    print(f"  => one worker applies {capacity:.0f} events/s from a burst")
    print("\n  targets: ack p99 <= 20 ms; applied p99 <= 1 s; >= 500 receipts/s")


if __name__ == "__main__":
    main()
