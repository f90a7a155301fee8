"""Server time of the staff overview and customer pages on a big tenant, beside /healthz in the same run.

    .venv/bin/python bench/pages.py [--customers 10000] [--rollup-hours 240] [--requests 200] [--keep]
    .venv/bin/python bench/pages.py --reuse bench-pages-<n>   # a tenant an earlier --keep run seeded

A fresh tenant (dropped at the end unless --keep; --reuse measures a kept one again, without seeding) gets, in bulk SQL (a few statements, no ORM loop):
  - N customers, 90% with a membership on a CI-catalog price (monthly/yearly, 1-4 seats; active,
    trialing, past due or canceled) and its history (1-3 rows);
  - four months of charges (one per paying membership and month), a refund per 50 and a lost
    dispute per 500 customers, recorded as payments and posted to the ledger (balanced, with
    running balances and daily totals), a failed charge and an open invoice with that failed attempt per past-due one;
  - usage: hourly rollups of one meter for every customer over `--rollup-hours` hours, whose counts
    add up to about 10 M events (the overview, like every page, reads rollups, never raw events);
  - meter sync states and reports (a few pending), daily sync runs; 50,000 provider events in the
    inbox (some dead), 20,000 outbound deliveries (some dead), a failing endpoint.
Then gunicorn serves it (2 workers) and `/healthz`, the owner's overview (`/dashboard/`, 30 and 90
days, as served: figures kept up to 60 s; and 90 days recomputed on every request with `fresh=1`)
the API's `/api/v1/reports/overview` (90 days), the customer list (`/customers/`: newest first, by MRR
on page 40, by usage this month, a search with filters) and a customer's page are requested in turn; p50/p95/p99 of the
server time (gunicorn's access log %(D)s) per path, and in-process (no server): the overview's
selector, and each page through Django's test client with the queries it makes (--in-process N).
Target (issue 13): overview, customer list and customer page p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import sys
import tempfile
import time
from pathlib import Path

from _harness import gunicorn, percentile, setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.services import tenant_provision  # noqa: E402
from billing.tiers.catalog import catalog_import  # noqa: E402
from console.overview.range import range_preset  # noqa: E402
from console.overview.selectors import overview_get  # noqa: E402
from tenants.services import tenant_delete  # noqa: E402

CATALOG = Path(__file__).resolve().parent.parent / "config" / "tiers" / "ci-service.yaml"

SEED = """
INSERT INTO memberships_customer (external_id, email, name, metadata, created_at, updated_at, country, tax_exempt)
SELECT 'cust-' || i, 'c' || i || '@bench.test', '', '{}', now() - (i %% 400) * interval '1 day', now(), '', false
  FROM generate_series(1, %(n)s) i;

CREATE TEMP TABLE bench_m AS
SELECT c.id AS customer_id, i,
       (ARRAY['team-monthly', 'pro-monthly', 'pro-yearly', 'team-yearly', 'team-monthly'])[1 + i %% 5] AS code,
       CASE WHEN i %% 20 = 0 THEN 'canceled' WHEN i %% 25 = 1 THEN 'past_due'
            WHEN i %% 10 = 3 THEN 'trialing' ELSE 'active' END AS status,
       1 + i %% 4 AS quantity
  FROM memberships_customer c, LATERAL (SELECT substr(c.external_id, 6)::int AS i) x
 WHERE x.i %% 10 <> 9;

INSERT INTO memberships_membership (status, provider, quantity, started_at, created_at, updated_at, customer_id,
    price_id, tier_id, cancel_at_period_end, provider_customer_id, provider_subscription_id, past_due_since, ended_at)
SELECT m.status, 'sandbox', m.quantity,
       CASE WHEN m.status = 'trialing' THEN now() - (m.i %% 14) * interval '1 day'
            ELSE now() - (45 + (m.i * 7) %% 400) * interval '1 day' END,
       now(), now(), m.customer_id, p.id, p.tier_id, false, '', '',
       CASE WHEN m.status = 'past_due' THEN now() - (m.i %% 30) * interval '1 day' - interval '1 hour' END,
       CASE WHEN m.status = 'canceled' THEN now() - (m.i %% 30) * interval '1 day' - interval '1 hour' END
  FROM bench_m m JOIN tiers_price p ON p.code = m.code;

INSERT INTO memberships_membershiphistory (at, status, quantity, reason, event_id, membership_id, tier_id)
SELECT started_at, CASE WHEN status = 'trialing' OR id %% 3 = 0 THEN 'trialing' ELSE 'active' END,
       quantity, 'bench', '', id, tier_id
  FROM memberships_membership
UNION ALL
SELECT started_at + interval '14 days', 'active', quantity, 'bench', '', id, tier_id
  FROM memberships_membership WHERE status <> 'trialing' AND id %% 3 = 0
UNION ALL
SELECT COALESCE(past_due_since, ended_at), status, quantity, 'bench', '', id, tier_id
  FROM memberships_membership WHERE status IN ('past_due', 'canceled');

INSERT INTO memberships_payment (provider, provider_payment_id, kind, amount, currency, occurred_at, event_id,
    customer_id, membership_id, reference, invoice_ref, fee_amount)
SELECT 'sandbox', 'ch-' || m.id || '-' || k, 'charge', p.unit_amount * m.quantity, p.currency,
       now() - (k * 30 + m.id %% 30) * interval '1 day', '', m.customer_id, m.id, 'ch-' || m.id || '-' || k, '',
       (p.unit_amount * m.quantity * 29) / 1000
  FROM memberships_membership m JOIN tiers_price p ON p.id = m.price_id, generate_series(0, 3) k
 WHERE m.status <> 'trialing' AND m.started_at < now() - (k * 30 + m.id %% 30) * interval '1 day'
UNION ALL
SELECT 'sandbox', 're-' || m.id, 'refund', p.unit_amount, p.currency, now() - (m.id %% 25) * interval '1 day', '',
       m.customer_id, m.id, 'ch-' || m.id || '-0', '', 0
  FROM memberships_membership m JOIN tiers_price p ON p.id = m.price_id WHERE m.id %% 50 = 7
UNION ALL
SELECT 'sandbox', 'dp-' || m.id, 'dispute_lost', p.unit_amount, p.currency, now() - (m.id %% 20) * interval '1 day',
       '', m.customer_id, m.id, 'ch-' || m.id || '-0', '', 0
  FROM memberships_membership m JOIN tiers_price p ON p.id = m.price_id WHERE m.id %% 500 = 11
UNION ALL
SELECT 'sandbox', 'fail-' || m.id, 'failed', p.unit_amount * m.quantity, p.currency, m.past_due_since, '',
       m.customer_id, m.id, 'fail-' || m.id, 'minv_pending', 0
  FROM memberships_membership m JOIN tiers_price p ON p.id = m.price_id WHERE m.status = 'past_due';

INSERT INTO ledger_ledgeraccount (code, kind, name, created_at) VALUES
  ('cash:sandbox', 'asset', 'Cash at sandbox', now()), ('receivable', 'asset', 'Accounts receivable', now()),
  ('refunds', 'revenue', 'Refunds (contra-revenue)', now()), ('chargebacks', 'expense', 'Chargebacks', now()),
  ('provider_fees', 'expense', 'Provider fees', now())
ON CONFLICT (code) DO NOTHING;

INSERT INTO ledger_journaltransaction (source, source_id, description, occurred_at, created_at, metadata)
SELECT 'payment', id::text, 'bench', occurred_at, now(), '{}'
  FROM memberships_payment WHERE kind IN ('charge', 'refund', 'dispute_lost') ORDER BY occurred_at, id;

WITH acc AS (SELECT code, id FROM ledger_ledgeraccount),
lines AS (
  SELECT t.id AS txn, t.occurred_at, p.currency, v.ord, v.code, v.amount
    FROM ledger_journaltransaction t JOIN memberships_payment p ON p.id = t.source_id::bigint
   CROSS JOIN LATERAL (VALUES
       (1, CASE p.kind WHEN 'charge' THEN 'cash:sandbox' WHEN 'refund' THEN 'refunds' ELSE 'chargebacks' END, p.amount),
       (2, CASE p.kind WHEN 'charge' THEN 'receivable' ELSE 'cash:sandbox' END, -p.amount),
       (3, CASE WHEN p.kind = 'charge' AND p.fee_amount > 0 THEN 'provider_fees' END, p.fee_amount),
       (4, CASE WHEN p.kind = 'charge' AND p.fee_amount > 0 THEN 'cash:sandbox' END, -p.fee_amount)
   ) AS v(ord, code, amount)
   WHERE t.source = 'payment' AND v.code IS NOT NULL
)
INSERT INTO ledger_journalentry (currency, amount, balance_after, occurred_at, transaction_id, account_id)
SELECT l.currency, l.amount,
       SUM(l.amount) OVER (PARTITION BY a.id, l.currency ORDER BY l.txn, l.ord), l.occurred_at, l.txn, a.id
  FROM lines l JOIN acc a ON a.code = l.code ORDER BY l.txn, l.ord;

INSERT INTO ledger_accountbalance (currency, balance, updated_at, account_id)
SELECT currency, SUM(amount), now(), account_id FROM ledger_journalentry GROUP BY account_id, currency;

INSERT INTO ledger_dailytotal (account_id, currency, source, day, debits, credits)
SELECT e.account_id, e.currency, t.source, (e.occurred_at AT TIME ZONE 'UTC')::date,
       COALESCE(SUM(e.amount) FILTER (WHERE e.amount > 0), 0), COALESCE(SUM(e.amount) FILTER (WHERE e.amount < 0), 0)
  FROM ledger_journalentry e JOIN ledger_journaltransaction t ON t.id = e.transaction_id
 GROUP BY 1, 2, 3, 4;
"""

SEED_OPS = """
INSERT INTO metering_rollup (customer, hour, count, sum, min, max, latest, latest_ts, meter_id)
SELECT 'cust-' || c, date_trunc('hour', now()) - h * interval '1 hour', 3 + (c + h) %% 3,
       (3 + (c + h) %% 3) * 7, 1, 12, 5, date_trunc('hour', now()) - h * interval '1 hour', %(meter)s
  FROM generate_series(1, %(n)s) c, generate_series(0, %(hours)s - 1) h;

INSERT INTO metering_rollup_month (meter_id, customer, month, count, sum, min, max, latest, latest_ts)
SELECT meter_id, customer, date_trunc('month', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(count), sum(sum),
       min(min), max(max), max(latest), max(latest_ts)
  FROM metering_rollup GROUP BY 1, 2, 3;

INSERT INTO metering_sync_state (period_start, period_end, usage, covered, reported, reports, customer_id, meter_id,
    synced_at)
SELECT date_trunc('month', now()), date_trunc('month', now()) + interval '1 month', 100, 100, 100, 1, id,
       %(meter)s, now() - interval '1 day'
  FROM memberships_customer;

INSERT INTO metering_sync_report (identifier, quantity, reported_after, parts, provider, provider_customer_id,
    status, provider_ref, error, attempts, created_at, sent_at, customer_id, meter_id, state_id)
SELECT 'bench-' || s.id || '-' || k, 100, 100, '{}', 'sandbox', '',
       CASE WHEN k = 1 AND s.id %% 200 = 0 THEN 'pending' WHEN k = 1 AND s.id %% 300 = 1 THEN 'refused' ELSE 'sent' END,
       '', '', 1, now() - interval '1 day', now() - interval '1 day', s.customer_id, s.meter_id, s.id
  FROM metering_sync_state s, generate_series(0, 1) k;

INSERT INTO metering_sync_run (started_at, finished_at, status, trigger, customers, reports, units, failures, errors,
    error)
SELECT now() - d * interval '1 day', now() - d * interval '1 day' + interval '40 seconds',
       CASE WHEN d %% 7 = 0 THEN 'partial' ELSE 'succeeded' END, 'beat', %(n)s, %(n)s, %(n)s * 100,
       CASE WHEN d %% 7 = 0 THEN 12 ELSE 0 END, '[]', ''
  FROM generate_series(0, 120) d;

INSERT INTO webhooks_inboxevent (provider, event_id, event_type, payload, received_at, status, attempts,
    last_error)
SELECT 'stripe', 'evt_' || i, 'invoice.paid', '{}', now() - (i %% 120) * interval '1 day',
       CASE WHEN i %% 1000 = 0 THEN 'dead' WHEN i %% 2500 = 1 THEN 'failed' WHEN i %% 5000 = 2 THEN 'unmatched'
            ELSE 'applied' END, 1, ''
  FROM generate_series(1, 50000) i;

INSERT INTO webhooks_webhookendpoint (url, description, event_types, secret_encrypted, is_active,
    consecutive_failures, disabled_reason, created_at)
VALUES ('https://ok.bench.test/hook', '', '[]', 'x', true, 0, '', now()),
       ('https://broken.bench.test/hook', '', '[]', 'x', true, 17, '', now());

INSERT INTO webhooks_outboundevent (id, type, customer, payload, created_at)
SELECT 'evt_b' || i, 'membership.updated', 'cust-' || (i %% %(n)s + 1), '{}', now() - (i %% 120) * interval '1 day'
  FROM generate_series(1, 20000) i;

INSERT INTO webhooks_delivery (customer, status, attempts, last_error, created_at, event_id, endpoint_id)
SELECT e.customer, CASE WHEN w.consecutive_failures > 0 AND i %% 100 = 0 THEN 'dead' ELSE 'succeeded' END, 1, '',
       e.created_at, e.id, w.id
  FROM webhooks_outboundevent e, LATERAL (SELECT substr(e.id, 6)::int AS i) x,
       LATERAL (SELECT * FROM webhooks_webhookendpoint ORDER BY id OFFSET x.i %% 2 LIMIT 1) w;
"""


def seed(tenant, n: int, hours: int) -> dict:
    from billing.invoicing.models import Invoice, InvoicePayment, InvoiceStatus
    from billing.memberships.models import Membership, Payment
    from billing.metering.models import Meter

    started = time.perf_counter()
    with tenant_context(tenant):
        catalog_import(text=CATALOG.read_text(), filename=CATALOG.name)
        with connection.cursor() as cursor:
            cursor.execute(SEED, {"n": n})
        # an open invoice per past-due membership, with its failed attempt
        failed = {p.membership_id: p for p in Payment.objects.filter(kind="failed")}
        invoices = Invoice.objects.bulk_create(
            [
                Invoice(customer_id=m.customer_id, membership_id=m.pk, number=f"BENCH-{m.pk}", status=InvoiceStatus.OPEN,
                        currency="usd", subtotal=failed[m.pk].amount, total=failed[m.pk].amount,
                        finalized_at=m.past_due_since, due_at=m.past_due_since)
                for m in Membership.objects.filter(status="past_due")
            ]
        )  # fmt: skip
        InvoicePayment.objects.bulk_create(
            [InvoicePayment(invoice=inv, payment=failed[inv.membership_id]) for inv in invoices]
        )
        meter = Meter.objects.order_by("pk").first()
        with connection.cursor() as cursor:
            cursor.execute(SEED_OPS, {"n": n, "hours": hours, "meter": meter.pk})
            cursor.execute("SELECT COALESCE(SUM(count), 0), COUNT(*) FROM metering_rollup")
            events, rollups = cursor.fetchone()
            counts = {}
            for table in ("memberships_membership", "memberships_membershiphistory", "memberships_payment",
                          "ledger_journalentry", "webhooks_inboxevent", "webhooks_delivery"):  # fmt: skip
                cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - our own table names
                counts[table] = cursor.fetchone()[0]
    analyze(tenant)
    return {"seconds": time.perf_counter() - started, "events": int(events), "rollups": rollups, **counts}


def analyze(tenant) -> None:
    """Autovacuum is off on these machines: give the planner its statistics."""
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def reused(slug: str):
    """(tenant, owner, a new integrator key) of a tenant seeded by an earlier run with --keep."""
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import api_key_create
    from tenants.selectors import tenant_get_by_slug

    tenant = tenant_get_by_slug(slug=slug)
    if tenant is None:
        raise SystemExit(f"no tenant {slug!r}: seed one with --keep first")
    with tenant_context(tenant):
        owner = User.objects.filter(role=Role.OWNER).order_by("pk").first()
        _, key = api_key_create(name="bench pages")
    return tenant, owner, key


def session_of(tenant, owner) -> str:
    with tenant_context(tenant):
        client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
        client.force_login(owner)
        return client.cookies[settings.SESSION_COOKIE_NAME].value


def pages(key: str) -> list[tuple[str, str, str]]:
    """(label, path, credentials: "" none, "session" the owner's login, else an integrator key)."""
    today = dt.datetime.now(dt.UTC).date()
    return [
        ("/healthz (baseline)", "/healthz", ""),
        ("overview 30 days, cached (<= 60 s)", "/dashboard/?range=30d", "session"),
        ("overview 90 days, cached", "/dashboard/?range=90d", "session"),
        ("overview 90 days, recomputed", "/dashboard/?range=90d&fresh=1", "session"),
        ("API overview 90 days, cached", f"/api/v1/reports/overview?from={today - dt.timedelta(days=89)}&to={today}",
         key),
        ("customers, newest first", "/customers/", "session"),
        ("customers by MRR, page 40", "/customers/?sort=-mrr&page=40", "session"),
        ("customers by usage this month", "/customers/?sort=-usage", "session"),
        ("customers: search + tier + status", "/customers/?q=cust-12&tier=team&status=active", "session"),
        ("customer page", "/customers/cust-1234/", "session"),
    ]  # fmt: skip


def in_process(tenant, owner, key: str, requests: int) -> None:
    """Each page through Django's test client in this process (no server, no network): p50/p95 of
    the whole request and the queries it makes."""
    from django.test.utils import CaptureQueriesContext

    with tenant_context(tenant):
        client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
        client.force_login(owner)
    print(f"\nin-process (Django test client, {requests} requests each after 3 warm-up):")
    for label, path, credentials in pages(key):
        headers = {"Authorization": f"Bearer {key}"} if credentials not in ("", "session") else {}
        for _ in range(3):
            client.get(path, headers=headers)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code}")
        with CaptureQueriesContext(connection) as queries:
            client.get(path, headers=headers)
        print(f"  {label:<36} p50 {percentile(samples, 50):7.2f} ms   p95 {percentile(samples, 95):7.2f} ms   "
              f"{len(queries):3d} queries")  # fmt: skip


def measure(base: str, host: str, key: str, session: str, requests: int) -> list[tuple[str, str]]:
    """Request each path in turn (10 warm-up rounds, then `requests` rounds); returns (label, path)."""
    headers = {
        "": {"Host": host},
        "session": {"Host": host, "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
        key: {"Host": host, "Authorization": f"Bearer {key}"},
    }
    paths = [(label, path, headers[credentials]) for label, path, credentials in pages(key)]
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(requests + 10):
        for _, path, headers in paths:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status}")
    return [(label, path) for label, path, _ in paths]


def logged_ms(log: str) -> dict[str, list[float]]:
    """Server time (ms) per requested path and query, in request order."""
    samples: dict[str, list[float]] = {}
    with open(log) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) == 3:
                path = parts[0].rstrip("?")
                samples.setdefault(path, []).append(int(parts[2]) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rollup-hours", type=int, default=240)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the seeded tenant (its slug is printed)")
    parser.add_argument(
        "--reuse", metavar="SLUG", help="measure a tenant seeded by an earlier --keep run (kept)"
    )
    parser.add_argument("--in-process", type=int, default=20, metavar="N",
                        help="requests per page through Django's test client, with its query count (0: none)")  # fmt: skip
    args = parser.parse_args()

    if args.reuse:
        tenant, owner, key = reused(args.reuse)
        print(f"reusing {args.reuse} (seeded earlier); ANALYZE ...", flush=True)
        analyze(tenant)
    else:
        slug = f"bench-pages-{int(time.time())}"
        provisioned = tenant_provision(
            slug=slug, name="Bench pages", domain=f"{slug}.localhost", owner_email=f"owner@{slug}.test"
        )
        tenant, owner, key = provisioned.tenant, provisioned.owner, provisioned.api_key_secret
    host = tenant.get_primary_domain().domain
    try:
        if not args.reuse:
            print(
                f"seeding {tenant.slug}: {args.customers:,} customers, rollups over {args.rollup_hours} hours ...",
                flush=True,
            )
            data = seed(tenant, args.customers, args.rollup_hours)
            print(
                f"  {data['seconds']:.1f} s: {data['memberships_membership']:,} memberships "
                f"({data['memberships_membershiphistory']:,} history rows), {data['memberships_payment']:,} payments, "
                f"{data['ledger_journalentry']:,} ledger entries, {data['events']:,} events in {data['rollups']:,} "
                f"hourly rollups (no raw event rows), {data['webhooks_inboxevent']:,} inbox events, "
                f"{data['webhooks_delivery']:,} deliveries"
            )
        with tenant_context(tenant):
            for preset in ("30d", "90d"):
                samples = []
                for _ in range(20):
                    started = time.perf_counter()
                    overview_get(period=range_preset(preset), fresh=True)
                    samples.append((time.perf_counter() - started) * 1000)
                print(f"  in-process overview_get ({preset}, recomputed): p50 {percentile(samples, 50):6.1f} ms  "
                      f"p95 {percentile(samples, 95):6.1f} ms")  # fmt: skip
        if args.in_process:
            in_process(tenant, owner, key, args.in_process)
        log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
        args_log = ["--access-logformat", "%(U)s?%(q)s %(s)s %(D)s"]
        with gunicorn(workers=2, access_log=log, args=args_log) as base:
            paths = measure(base, host, key, session_of(tenant, owner), args.requests)
            time.sleep(0.5)
        samples = logged_ms(log)
        print(
            f"\nserver time (gunicorn %(D)s), {args.requests} requests each after 10 warm-up rounds, same run:"
        )
        for label, path in paths:
            got = samples.get(path, [])[10:]
            print(f"  {label:<36} p50 {percentile(got, 50):7.2f} ms   p95 {percentile(got, 95):7.2f} ms   "
                  f"p99 {percentile(got, 99):7.2f} ms   (n={len(got)})")  # fmt: skip
        print(
            "target: overview, customers list and customer page p95 <= 100 ms at 10,000 customers and 10 M events"
        )
        os.unlink(log)
    finally:
        if args.keep and not args.reuse:
            print(f"kept: measure it again with --reuse {tenant.slug}")
        if not args.keep and not args.reuse:
            tenant_delete(tenant=tenant)


if __name__ == "__main__":
    sys.exit(main())
