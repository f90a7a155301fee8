"""Entitlement checks and key verification: throughput and latency.

    .venv/bin/python bench/entitlements.py [--seconds 5] [--connections 8] [--customers 1000]

Same run, same machine:
  - in-process: the service call `entitlement_check` (cached snapshot) beside a raw Redis GET;
  - HTTP under gunicorn (2 workers, one per core), once with sync workers and once with gthread workers
    (what the Procfile serves with), with wrk: POST /api/v1/entitlements/check (a limit
    feature), POST /api/v1/keys/verify (a rate feature: key lookup + snapshot + GCRA script) and
    the trivial authenticated GET /api/v1/me; client-side figures from wrk, server-side p50/p99
    from gunicorn's per-request timing (%(D)s).
  and the gthread/sync ratios of each figure.
Targets (DESIGN.md): p99 <= 1 ms server-side, >= 4,000 checks/s on 2 cores (a quiet machine).
"""

import argparse
import json
import os
import tempfile
import time

from _harness import (
    ROOT,
    bench_tenant,
    fmt_http,
    gunicorn,
    server_side_ms,
    setup_django,
    summary,
    timed,
    wrk,
    wrk_post_lua,
)

setup_django()

from django_tenants.utils import tenant_context  # noqa: E402

from billing.entitlements.models import CustomerApiKey  # noqa: E402
from billing.entitlements.services import customer_key_create, entitlement_check, override_set  # noqa: E402
from billing.memberships.models import Customer  # noqa: E402
from billing.memberships.services import customer_upsert, membership_set_tier  # noqa: E402
from billing.tiers.catalog import catalog_import  # noqa: E402
from billing.tiers.models import Tier  # noqa: E402
from kernel.redis import get_redis  # noqa: E402


def seed(tenant, customers: int) -> list[str]:
    with tenant_context(tenant):
        catalog_import(text=(ROOT / "config" / "tiers" / "ci-service.yaml").read_text())
        team = Tier.objects.get(code="team")
        existing = Customer.objects.filter(external_id__startswith="bench-").count()
        for i in range(existing, customers):
            customer, _ = customer_upsert(external_id=f"bench-{i}")
            membership_set_tier(customer=customer, tier=team)
            # a rate high enough that the bench measures the check, not refusals
            override_set(
                customer=customer, feature="api_requests", rate_limit=10_000_000, rate_window_seconds=60
            )
            if i % 100 == 0:
                print(f"\rseeding customers {i}/{customers}", end="", flush=True)
        print(f"\rseeding customers {customers}/{customers}")
        CustomerApiKey.objects.filter(name="bench").update(revoked_at=None)
        keys = []
        for customer in Customer.objects.filter(external_id__startswith="bench-").order_by("id")[:200]:
            keys.append(customer_key_create(customer=customer, name="bench")[1])
    return keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    args = parser.parse_args()
    tenant, host, api_key = bench_tenant()
    keys = seed(tenant, args.customers)

    with tenant_context(tenant):
        for i in range(args.customers):  # warm every snapshot
            entitlement_check(customer=f"bench-{i}", feature="private_projects")
        names = [f"bench-{i % args.customers}" for i in range(args.n)]
        it = iter(names)
        service = timed(lambda: entitlement_check(customer=next(it), feature="private_projects"), args.n)
        it = iter(names)
        service_rate = timed(lambda: entitlement_check(customer=next(it), feature="api_requests"), args.n)
    client = get_redis()
    client.set("bench:raw", "x")
    raw = timed(lambda: client.get("bench:raw"), args.n)

    print("\nin-process")
    print(f"  entitlement_check (limit, cached)    {summary(service)}")
    print(f"  entitlement_check (rate, GCRA)       {summary(service_rate)}")
    print(f"  raw Redis GET (baseline)             {summary(raw)}")

    auth = {"Host": host, "Authorization": f"Bearer {api_key}"}
    check_bodies = [
        json.dumps({"customer": f"bench-{i}", "feature": "private_projects"}) for i in range(args.customers)
    ]
    verify_bodies = [json.dumps({"key": key, "feature": "api_requests"}) for key in keys]
    check_lua = wrk_post_lua("/api/v1/entitlements/check", check_bodies, auth)
    verify_lua = wrk_post_lua("/api/v1/keys/verify", verify_bodies, auth)
    # the same run measures both worker classes: sync (one connection per worker at a time; gunicorn's
    # close_graceful waits for the client to hang up) and gthread, which `make run`/the Procfile use
    results = {}
    for label, server_args in (
        ("sync", ["--worker-class", "sync"]),
        ("gthread", ["--worker-class", "gthread", "--threads", os.environ.get("WEB_THREADS", "4")]),
    ):
        results[label] = http_figures(
            label, server_args, workers=args.workers, seconds=args.seconds, connections=args.connections,
            auth=auth, check_lua=check_lua, verify_lua=verify_lua,
        )  # fmt: skip
    sync, gthread = results["sync"], results["gthread"]
    print("\ngthread / sync (same run)")
    for name in ("checks", "verify", "me"):
        print(f"  {name:<8} throughput x{gthread[name]['rps'] / max(sync[name]['rps'], 1e-9):.2f}")
    for name in ("checks", "verify", "me"):
        ratio = percentile(gthread["p99_" + name], 99) / max(percentile(sync["p99_" + name], 99), 1e-9)
        print(f"  {name:<8} server-side p99 x{ratio:.2f}")
    print("\n  targets (DESIGN.md, 2 cores, quiet machine): >= 4,000 checks/s; p99 <= 1 ms server-side")
    for path in (check_lua, verify_lua):
        os.unlink(path)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def http_figures(label, server_args, *, workers, seconds, connections, auth, check_lua, verify_lua) -> dict:
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    print(f"\nHTTP: gunicorn, {workers} {label} workers, wrk {connections} connections, {seconds} s each")
    with gunicorn(workers=workers, args=server_args) as base:  # throughput: no access log to write
        wrk(f"{base}/api/v1/me", headers=auth, seconds=1, connections=connections)  # warm-up
        me = wrk(f"{base}/api/v1/me", headers=auth, seconds=seconds, connections=connections)
        checks = wrk(
            f"{base}/api/v1/entitlements/check",
            headers={},
            seconds=seconds,
            connections=connections,
            lua=check_lua,
        )
        verify = wrk(
            f"{base}/api/v1/keys/verify", headers={}, seconds=seconds, connections=connections, lua=verify_lua
        )
    print("  " + fmt_http("POST /api/v1/entitlements/check", checks))
    print("  " + fmt_http("POST /api/v1/keys/verify", verify))
    print("  " + fmt_http("GET /api/v1/me (baseline)", me))
    print(
        f"  => checks/s = {checks['rps'] / max(me['rps'], 1e-9):.0%} and verifications/s = {verify['rps'] / max(me['rps'], 1e-9):.0%} of the trivial authenticated endpoint"
    )

    # server-side latency: a second server that logs gunicorn's own per-request time, at a lower
    # load (2 connections) so that queueing behind the load generator does not count
    with gunicorn(workers=workers, access_log=log, args=server_args) as base:
        wrk(f"{base}/api/v1/me", headers=auth, seconds=1, connections=2)
        open(log, "w").close()
        for path, lua in (
            ("/api/v1/me", None),
            ("/api/v1/entitlements/check", check_lua),
            ("/api/v1/keys/verify", verify_lua),
        ):
            wrk(f"{base}{path}", headers=auth if lua is None else {}, seconds=seconds, connections=2, lua=lua)
        time.sleep(0.5)
    print(f"\n  server-side ({label}, gunicorn %(D)s, 2 connections)")
    figures = {"checks": checks, "verify": verify, "me": me}
    for name, path in (
        ("checks", "/api/v1/entitlements/check"),
        ("verify", "/api/v1/keys/verify"),
        ("me", "/api/v1/me"),
    ):
        samples = server_side_ms(log, path)
        figures["p99_" + name] = samples
        print(f"  {path:<32} {summary(samples)}")
    os.unlink(log)
    return figures


if __name__ == "__main__":
    main()
