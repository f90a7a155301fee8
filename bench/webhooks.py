"""Provider webhooks in: ack latency, receipts/s, and receipt → applied with one live worker.

    .venv/bin/python bench/webhooks.py [--seconds 5] [--connections 8] [--events 20000] [--applied 300]

Same run, same machine:
  - HTTP under gunicorn (2 sync workers) with wrk: POST /webhooks/sandbox/ with distinct signed
    events (10% of them redeliveries), beside GET /healthz (no database, no signature) as baseline;
    server-side p50/p99 from gunicorn's own timing;
  - receipt → applied: one Celery worker process (`--pool solo`: the process that applies is the
    one consuming, no prefork child); subscription events sent one after another;
    per event, the inbox row's processed_at minus received_at. Per worker configuration (CONFIGS:
    the inbox drain as shipped, one event per task, and that without the DB-reuse/tenant-cache
    settings), beside a no-op task's rate in the same worker.
Targets (issue 4): ack p99 <= 20 ms, applied p99 <= 1 s, >= 500 receipts/s; (issue 10 item 22)
>= 300 events/s applied per worker, receipt → applied p99 <= 1 s at 100 events/s.
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
    parser.add_argument("--applied", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100, help="events/s for the latency run")
    parser.add_argument("--skip-http", action="store_true", help="only the receipt → applied figures")
    args = parser.parse_args()
    tenant, host, _ = bench_tenant()
    run = str(int(time.time()))
    with tenant_context(tenant):
        catalog_import(text=(ROOT / "config" / "tiers" / "ci-service.yaml").read_text())
        adapter = SandboxProvider(webhook_secret=provider_account_upsert(provider="sandbox").webhook_secret)
    if not args.skip_http:
        with tenant_context(tenant):
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

    applied(args, tenant, host, adapter, run)


# worker configurations compared in one run (issue 10 item 22): as shipped (a drain applies a tenant's
# waiting events in batches, one broker message for a burst), then one event per task (how it was
# applied before the drain, with today's statements), then that without the worker settings of the
# first round (no tenant cache, no DB reuse: where item 22 started). The last is the baseline.
CONFIGS = {
    "as shipped (drain, batches of 100)": {},
    "one event per task": {"WEBHOOK_DRAIN_BATCH": "0"},
    "one event per task, no tenant cache, no DB reuse (before)": {
        "WEBHOOK_DRAIN_BATCH": "0", "CELERY_TASK_TENANT_CACHE_SECONDS": "0", "CELERY_DB_REUSE_MAX": "0"},
}  # fmt: skip


def _worker(name: str, extra_env: dict[str, str]):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "monetize.settings", **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "monetize", "worker", "--pool", "solo", "--queues", "inbox", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "-n", name],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def applied(args, tenant, host, adapter, run: str) -> None:
    """Receipt → applied with one live worker process (solo pool, the inbox queue), per config:
    a no-op task's rate (the worker's own per-task cost: broker, tenant switch), the rate of a burst
    of provider events already queued, and receipt → applied latency at a steady rate."""
    from django.test import Client

    from monetize.celery import app, noop

    client = Client(HTTP_HOST=host)
    with tenant_context(tenant):
        first = InboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def send(i: int, tag: str) -> None:
        body, headers = adapter.sign(
            payload=sub_payload(f"evt_{run}_{tag}_{i}", f"bench-{run}-{tag}-{i % 50}", i)
        )
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        client.post("/webhooks/sandbox/", body, content_type="application/json", **meta)

    def rows(tag: str):
        return InboxEvent.objects.filter(id__gt=first, event_id__contains=f"_{tag}_")

    def wait_applied(tag: str, timeout: float = 300) -> tuple[list[float], int]:
        with tenant_context(tenant):
            deadline = time.monotonic() + timeout
            while rows(tag).filter(processed_at__isnull=True).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            lags = [
                lag.total_seconds() * 1000
                for lag in rows(tag)
                .filter(processed_at__isnull=False)
                .annotate(lag=F("processed_at") - F("received_at"))
                .values_list("lag", flat=True)
            ]
            return lags, rows(tag).filter(processed_at__isnull=True).count()

    from django.conf import settings

    results = []
    shipped_batch = settings.WEBHOOK_DRAIN_BATCH
    for label, extra_env in CONFIGS.items():
        # the receiving side (this process) asks for drains the way the worker applies them
        settings.WEBHOOK_DRAIN_BATCH = int(extra_env.get("WEBHOOK_DRAIN_BATCH", shipped_batch))
        name = f"bench-{os.getpid()}-{len(results)}@localhost"
        worker = _worker(name, extra_env)
        try:
            deadline = time.monotonic() + 30
            while not app.control.ping(destination=[name], timeout=0.5) and time.monotonic() < deadline:
                time.sleep(0.2)
            with tenant_context(tenant):  # drain what earlier runs left
                while (
                    InboxEvent.objects.filter(status="pending").exists() and time.monotonic() < deadline + 120
                ):
                    time.sleep(0.5)
            tag = f"{len(results)}"
            # capacity: queue the burst while the worker does not consume, then let it go
            app.control.cancel_consumer("inbox", destination=[name], reply=True)
            with tenant_context(tenant):
                noops = [noop.apply_async(queue="inbox") for _ in range(args.applied)]
            started = time.monotonic()
            app.control.add_consumer("inbox", destination=[name], reply=True)
            noops[-1].get(timeout=300)
            noop_rate = args.applied / (time.monotonic() - started)
            app.control.cancel_consumer("inbox", destination=[name], reply=True)
            with tenant_context(tenant):
                for i in range(args.applied):
                    send(i, f"burst{tag}")
            started = time.monotonic()
            app.control.add_consumer("inbox", destination=[name], reply=True)
            _, burst_unapplied = wait_applied(f"burst{tag}")
            rate = args.applied / (time.monotonic() - started)
            # latency at a steady rate
            with tenant_context(tenant):
                period, next_at = 1 / args.rate, time.monotonic()
                for i in range(args.applied):
                    send(i, f"lat{tag}")
                    next_at += period
                    time.sleep(max(0.0, next_at - time.monotonic()))
            lags, lat_unapplied = wait_applied(f"lat{tag}")
        finally:
            worker.terminate()
            worker.wait(timeout=20)
        results.append((label, noop_rate, rate, lags, burst_unapplied + lat_unapplied))

    print(
        f"\nreceipt → applied, one worker process (solo pool, inbox queue); {os.cpu_count()} cores shared with"
    )
    print("the sender, PostgreSQL, Redis and anything else running (absolute rates move; compare the ratios)")
    print(
        f"subscription events (membership + history + cache), bursts of {args.applied}; latency at {args.rate:g} events/s"
    )
    baseline, per_event = results[-1][2], results[min(1, len(results) - 1)][2]
    for label, noop_rate, rate, lags, unapplied in results:
        print(f"  {label}")
        print(f"    no-op task (same worker)   {noop_rate:8.0f} tasks/s")
        print(f"    provider events applied    {rate:8.0f} events/s   {rate / noop_rate:5.2f}x no-op   "
              f"{rate / per_event:5.2f}x one event per task   {rate / baseline:5.2f}x before")  # fmt: skip
        print(f"    receipt → applied          {summary(lags)}   unapplied: {unapplied}")
    print("\n  targets: >= 300 events/s applied per worker; receipt → applied p99 <= 1 s at 100 events/s")


if __name__ == "__main__":
    main()
