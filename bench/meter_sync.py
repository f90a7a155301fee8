"""Meter sync of N customers (default 10,000), each with usage in one meter.

    .venv/bin/python bench/meter_sync.py [--customers 10000]

Same run, same machine, on a fresh tenant (dropped at the end):
  - baseline: computing every customer's delta without reporting anything (`usage_unsynced`);
  - sync to the sandbox provider (each report recorded in our own table);
  - sync to a loopback fake Stripe (a local HTTP server answering /v1/billing/meter_events like
    Stripe), through the real stripe SDK and the Stripe adapter: one HTTP request per report;
  - a re-run with nothing new (what most nights cost).
Target (issue 5): 10,000 customers synced in <= 60 s.
"""

import argparse
import datetime as dt
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from _harness import free_port, setup_django

setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.services import tenant_provision  # noqa: E402
from billing.memberships.models import Customer, Membership  # noqa: E402
from billing.metering.ingest import events_ingest  # noqa: E402
from billing.metering.services import meter_create  # noqa: E402
from billing.metering.sync import meter_sync_run, usage_unsynced  # noqa: E402
from billing.providers.services import provider_account_upsert  # noqa: E402
from billing.tiers.models import Tier  # noqa: E402
from tenants.services import tenant_delete  # noqa: E402


class FakeStripeMeterEvents(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls
    seen: set[str] = set()

    def do_POST(self):  # noqa: N802
        form = {
            k: v[0]
            for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
        }
        FakeStripeMeterEvents.seen.add(form["identifier"])
        body = json.dumps({"object": "billing.meter_event", "event_name": form["event_name"],
                           "identifier": form["identifier"], "payload": {}, "timestamp": int(form["timestamp"]),
                           "created": int(form["timestamp"]), "livemode": False}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        body = str(len(FakeStripeMeterEvents.seen)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def ingest(n: int, tag: str) -> None:
    now = timezone.now().replace(microsecond=0)
    events = [
        {"id": f"{tag}-{i}", "customer": f"cust-{i}", "type": "job.done", "timestamp": now.isoformat(),
         "properties": {"minutes": 1 + i % 7}}
        for i in range(n)
    ]  # fmt: skip
    for offset in range(0, n, 10_000):
        events_ingest(events=events[offset : offset + 10_000])


def timed_run(label: str, **kwargs) -> float:
    started = time.perf_counter()
    run = meter_sync_run(**kwargs)
    seconds = time.perf_counter() - started
    print(
        f"{label:<44} {seconds:7.2f} s   {run.customers} customers, {run.reports} reports, "
        f"{run.units} units, {run.failures} failures ({run.status})"
    )
    return seconds


def serve(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), FakeStripeMeterEvents).serve_forever()


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the fake Stripe's own process
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    n = args.customers

    slug = f"bench-sync-{secrets.token_hex(3)}"
    tenant = tenant_provision(slug=slug, name="Bench sync", domain=f"{slug}.localhost").tenant
    # the fake Stripe is a process of its own, as a provider would be (not a thread fighting for our GIL)
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        with tenant_context(tenant):
            print(f"setting up {n} customers with usage in one meter ...")
            Customer.objects.bulk_create(
                [Customer(external_id=f"cust-{i}") for i in range(n)], batch_size=5000
            )
            meter_create(code="minutes", event_type="job.done", aggregation="sum", value_property="minutes")
            ingest(n, "a")

            started = time.perf_counter()
            deltas = usage_unsynced()
            baseline = time.perf_counter() - started
            print(
                f"{'baseline: compute the deltas, report nothing':<44} {baseline:7.2f} s   {len(deltas)} deltas"
            )

            sandbox = timed_run("sync to the sandbox recorder")
            timed_run("re-run, nothing new")

            # the same customers at "Stripe" (a loopback server), one more event each
            wait_for(port)
            provider_account_upsert(
                provider="stripe",
                credentials={
                    "api_key": "sk_test_bench",
                    "api_base": f"http://127.0.0.1:{port}",
                },
                make_default=True,
            )
            tier = Tier.objects.first() or Tier.objects.create(code="bench", name="Bench", is_default=True)
            now = timezone.now()
            customers = list(Customer.objects.order_by("pk"))
            Membership.objects.bulk_create(
                [Membership(customer=c, tier=tier, status="active", provider="stripe", started_at=now,
                            provider_customer_id=f"cus_{c.pk}", provider_subscription_id=f"sub_{c.pk}",
                            current_period_start=now - dt.timedelta(days=1), current_period_end=now + dt.timedelta(days=29))
                 for c in customers],
                batch_size=5000,
            )  # fmt: skip
            ingest(n, "b")
            stripe = timed_run("sync to a loopback Stripe (HTTP, stripe SDK)")
            recorded = urllib.request.urlopen(f"http://127.0.0.1:{port}/count").read().decode()
            print(f"  the fake Stripe recorded {recorded} distinct meter events")
            print(
                f"\nsync of {n} customers: sandbox {sandbox:.1f} s, Stripe over HTTP {stripe:.1f} s "
                f"(baseline {baseline:.1f} s; target <= 60 s)"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
        connection.set_schema_to_public()
        tenant_delete(tenant=tenant)


if __name__ == "__main__":
    main()
