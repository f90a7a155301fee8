"""Entitlement checks and key verification: throughput and latency.

    .venv/bin/python bench/entitlements.py [--seconds 5] [--connections 8] [--customers 1000]
    .venv/bin/python bench/entitlements.py --worker-classes granian@2x2,granian@3x1  # two shapes

Same run, same machine:
  - in-process: the service call `entitlement_check` (cached snapshot) beside a raw Redis GET;
  - HTTP under gunicorn, with sync workers, gunicorn's gthread workers and BalancedThreadWorker
    (monetize/gunicorn_worker.py: gthread that shares connections out evenly, scripts/web.sh's
    WEB_SERVER=gunicorn), and under Granian (what the Procfile serves with by default), each with
    scripts/web.sh's default shape (WEB_CONCURRENCY workers, one more than the cores; WEB_THREADS
    threads each, 1) unless --workers or a label's @<workers>x<threads> says otherwise, with wrk:
    POST /api/v1/entitlements/check (a limit feature), POST /api/v1/keys/verify (a rate feature: key lookup + snapshot + GCRA script) and
    the trivial authenticated GET /api/v1/me, the same checks with the fast lane off
    (API_FAST_LANE=0: through Django's whole request cycle), and the same check POSTs to a WSGI app that does
    nothing (bench/_bare_wsgi.py: the floor of gunicorn, loopback and wrk); client-side figures from
    wrk, CPU time per request of the server, wrk and Redis (steadier than req/s when the machine is
    shared), server-side p50/p99 from the server's own per-request timing (gunicorn's %(D)s, Granian's dt_ms).
  and the ratios of each figure to sync's; how the workers split the CPU (an uneven split is one
  worker holding most connections).
Targets (DESIGN.md): p99 <= 1 ms server-side, >= 4,000 checks/s on 2 cores (a quiet machine).
"""

import argparse
import functools
import json
import os
import tempfile
import time

from _harness import (
    ROOT,
    bench_tenant,
    fmt_http,
    granian,
    gunicorn,
    server_cpu_seconds,
    server_side_ms,
    setup_django,
    summary,
    timed,
    web_shape,
    worker_cpu_seconds,
    wrk,
    wrk_post_lua,
)

setup_django()

from django.conf import settings  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.entitlements import cache as snapshot_cache  # noqa: E402
from billing.entitlements.models import CustomerApiKey  # noqa: E402
from billing.entitlements.services import (  # noqa: E402
    customer_key_create,
    customer_key_revoke,
    entitlement_check,
    override_set,
)
from billing.memberships.models import ENTITLED_STATUSES, Customer  # noqa: E402
from billing.memberships.services import customer_upsert, membership_set_tier  # noqa: E402
from billing.tiers.catalog import catalog_import  # noqa: E402
from billing.tiers.models import Tier  # noqa: E402
from kernel.redis import get_redis, make_client  # noqa: E402

BENCH_RATE = 10_000_000  # a rate high enough that the bench measures the check, not refusals


def seed(tenant, customers: int) -> list[str]:
    """Customers bench-0 … bench-<customers-1> on the team tier with a high api_requests rate, and
    fresh end-user keys for the first 200 of them. Idempotent: it looks at exactly these customers,
    not at how many `bench-…` customers the (shared) bench tenant holds (other benches add their
    own there), so a reused bench database seeds only what is missing."""
    names = [f"bench-{i}" for i in range(customers)]
    with tenant_context(tenant):
        catalog_import(text=(ROOT / "config" / "tiers" / "ci-service.yaml").read_text())
        team = Tier.objects.get(code="team")
        ready = set(
            Customer.objects.filter(
                external_id__in=names,
                memberships__tier=team,
                memberships__status__in=ENTITLED_STATUSES,
                overrides__feature__code="api_requests",
                overrides__rate_limit=BENCH_RATE,
                overrides__rate_window_seconds=60,
            ).values_list("external_id", flat=True)
        )
        missing = [name for name in names if name not in ready]
        for done, name in enumerate(missing):
            customer, _ = customer_upsert(external_id=name)
            membership_set_tier(customer=customer, tier=team)
            override_set(
                customer=customer, feature="api_requests", rate_limit=BENCH_RATE, rate_window_seconds=60
            )
            if done % 100 == 0:
                print(f"\rseeding customers {done}/{len(missing)}", end="", flush=True)
        print(f"\rcustomers: {len(ready)} already seeded, {len(missing)} seeded now")
        # a key's secret is shown once: earlier runs' keys are revoked, fresh ones made
        for key in CustomerApiKey.objects.filter(name="bench", revoked_at__isnull=True):
            customer_key_revoke(key=key)
        keys = []
        for customer in Customer.objects.filter(external_id__in=names[:200]).order_by("id"):
            keys.append(customer_key_create(customer=customer, name="bench")[1])
    return keys


def warm(tenant, customers: int) -> None:
    """Every snapshot built afresh, so none expires while measured: a snapshot cached by a run a
    few minutes earlier would otherwise reach ENTITLEMENT_CACHE_SECONDS mid-run and be rebuilt from
    PostgreSQL inside the timed requests."""
    names = [f"bench-{i}" for i in range(customers)]
    with tenant_context(tenant):
        snapshot_cache.invalidate_many(names)
        for name in names:
            entitlement_check(customer=name, feature="private_projects")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=web_shape()[0], help="default: as scripts/web.sh")
    parser.add_argument(
        "--worker-classes",
        default="sync,gthread,balanced,granian-redis,granian",
        help="comma-separated servers to measure: gunicorn's sync, gthread, balanced (BalancedThreadWorker);"
        " granian (what the Procfile serves with); granian-redis (the same with LOCAL_CACHE_SECONDS=0:"
        " every check reads Redis). A label may end in @<workers>x<threads> (granian@4x1, balanced@2x2):"
        " that server with that many worker processes and threads each, to compare shapes in one run",
    )
    args = parser.parse_args()
    # every label read before anything is measured: a typo fails now, not after minutes of figures
    shapes = {  # "": the in-process figures only
        label: server_shape(label, args.workers, web_shape()[1])
        for label in filter(None, args.worker_classes.split(","))
    }
    tenant, host, api_key = bench_tenant()
    keys = seed(tenant, args.customers)

    warm(tenant, args.customers)
    with tenant_context(tenant):
        names = [f"bench-{i % args.customers}" for i in range(args.n)]
        it = iter(names)
        service = timed(lambda: entitlement_check(customer=next(it), feature="private_projects"), args.n)
        it = iter(names)
        service_rate = timed(lambda: entitlement_check(customer=next(it), feature="api_requests"), args.n)
    client = get_redis()
    client.set("bench:raw", "x")
    raw = timed(lambda: client.get("bench:raw"), args.n)
    # the same GET through redis-py's pooled client (a checkout per command), as kernel.redis
    # served it before it gave each thread its own connection
    pooled = make_client(settings.CACHES["default"]["LOCATION"])
    raw_pooled = timed(lambda: pooled.get("bench:raw"), args.n)
    cpu_own = cpu_per_call(lambda: client.get("bench:raw"), args.n)
    cpu_pooled = cpu_per_call(lambda: pooled.get("bench:raw"), args.n)

    print("\nin-process")
    print(f"  entitlement_check (limit, cached)    {summary(service)}")
    print(f"  entitlement_check (rate, GCRA)       {summary(service_rate)}")
    print(f"  raw Redis GET (baseline)             {summary(raw)}")
    print(f"  raw Redis GET, redis-py pooled       {summary(raw_pooled)}")
    print(
        f"  client CPU per GET: this thread's connection {cpu_own:.1f} us,"
        f" redis-py's pool {cpu_pooled:.1f} us (x{cpu_pooled / max(cpu_own, 1e-9):.2f})"
    )

    auth = {"Host": host, "Authorization": f"Bearer {api_key}"}
    check_bodies = [
        json.dumps({"customer": f"bench-{i}", "feature": "private_projects"}) for i in range(args.customers)
    ]
    verify_bodies = [json.dumps({"key": key, "feature": "api_requests"}) for key in keys]
    check_lua = wrk_post_lua("/api/v1/entitlements/check", check_bodies, auth)
    verify_lua = wrk_post_lua("/api/v1/keys/verify", verify_bodies, auth)
    results = {}
    for label, (server, workers, threads) in shapes.items():
        warm(tenant, args.customers)
        if server.startswith("granian"):
            off = {"LOCAL_CACHE_SECONDS": "0"} if server == "granian-redis" else {}

            def serve(extra_env=None, _off=off, _workers=workers, _threads=threads, **kwargs):
                return granian(
                    workers=_workers, threads=_threads, extra_env={**_off, **(extra_env or {})}, **kwargs
                )

        else:
            serve = functools.partial(gunicorn, workers=workers, args=GUNICORN_ARGS[server](threads))
        results[label] = http_figures(
            label, serve, workers=workers, threads=threads, seconds=args.seconds,
            connections=args.connections, auth=auth, check_lua=check_lua, verify_lua=verify_lua,
        )  # fmt: skip
    pairs = [
        ("gthread", "sync"),
        ("balanced", "sync"),
        ("granian", "sync"),
        ("granian", "balanced"),
        ("granian", "granian-redis"),
    ]
    # in a run that compares shapes (granian@2x2,granian@2x1), each beside the first label measured
    first = next(iter(results), None)
    if any("@" in label for label in results):
        pairs += [(label, first) for label in results if label != first and (label, first) not in pairs]
    for label, base in pairs:
        if {base, label} <= results.keys():
            sync, other = results[base], results[label]
            print(f"\n{label} / {base} (same run)")
            for name in ("checks", "verify", "me"):
                print(f"  {name:<8} throughput x{other[name]['rps'] / max(sync[name]['rps'], 1e-9):.2f}")
            for name in ("checks", "verify", "me"):
                ratio = percentile(other["p99_" + name], 99) / max(percentile(sync["p99_" + name], 99), 1e-9)
                print(f"  {name:<8} server-side p99 x{ratio:.2f}")
    print("\n  targets (DESIGN.md, 2 cores, quiet machine): >= 4,000 checks/s; p99 <= 1 ms server-side")
    for path in (check_lua, verify_lua):
        os.unlink(path)


# gunicorn's worker classes by label, given the threads a worker: sync (one connection per worker at
# a time; gunicorn's close_graceful waits for the client to hang up), gthread, and the balanced
# gthread that scripts/web.sh's WEB_SERVER=gunicorn serves with
GUNICORN_ARGS = {
    "sync": lambda threads: ["--worker-class", "sync"],
    "gthread": lambda threads: ["--worker-class", "gthread", "--threads", str(threads)],
    "balanced": lambda threads: [
        "--worker-class", "monetize.gunicorn_worker.BalancedThreadWorker", "--threads", str(threads),
    ],
}  # fmt: skip
SERVERS = (*GUNICORN_ARGS, "granian", "granian-redis")


def server_shape(label: str, workers: int, threads: int) -> tuple[str, int, int]:
    """('granian', 4, 1) for 'granian@4x1'; a label without a shape takes --workers and WEB_THREADS."""
    server, _, shape = label.partition("@")
    if server not in SERVERS:
        raise SystemExit(f"{label}: the servers are {', '.join(SERVERS)}")
    if shape:
        try:
            workers, threads = (int(part) for part in shape.split("x"))
        except ValueError:
            workers = 0
        if workers < 1 or threads < 1:
            raise SystemExit(f"{label}: a shape is @<workers>x<threads>, both at least 1, as in granian@4x1")
    return server, workers, threads


def cpu_per_call(fn, n: int) -> float:
    """This process's CPU time per call of fn, in microseconds (the client's share of a round trip)."""
    fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def _redis_cpu_seconds() -> float:
    info = get_redis().info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def loaded(base: str, path: str, *, seconds: int, connections: int, headers: dict, lua: str | None) -> dict:
    """wrk's figures, plus the CPU time each request cost the server (gunicorn's master and workers),
    wrk and Redis (a server other users share: an upper bound)."""
    server, redis_cpu, split = server_cpu_seconds(base), _redis_cpu_seconds(), worker_cpu_seconds(base)
    result = wrk(f"{base}{path}", headers=headers, seconds=seconds, connections=connections, lua=lua)
    requests = max(result["requests"], 1)
    used = [after - before for before, after in zip(split, worker_cpu_seconds(base), strict=True)]
    result["split"] = [x / max(sum(used), 1e-9) for x in used]
    result["cpu_us"] = {
        "server": (server_cpu_seconds(base) - server) / requests * 1e6,
        "wrk": result["client_cpu"] / requests * 1e6,
        "redis": (_redis_cpu_seconds() - redis_cpu) / requests * 1e6,
    }
    return result


def fmt_cpu(name: str, result: dict) -> str:
    cpu = result["cpu_us"]
    total = sum(cpu.values())
    return (
        f"{name:<34} server {cpu['server']:6.0f} us   wrk {cpu['wrk']:4.0f} us   Redis {cpu['redis']:4.0f} us"
        f"   => {2e6 / max(total, 1e-9):6.0f} req/s on 2 dedicated cores"
        f"   workers' CPU split {'/'.join(f'{x:.0%}' for x in result['split'])}"
    )


def http_figures(
    label, serve, *, workers, threads, seconds, connections, auth, check_lua, verify_lua
) -> dict:
    """`serve(extra_env=, access_log=, app=)`: a context manager serving the app, yielding its base URL."""
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    under_granian = label.startswith("granian")  # granian, granian-redis
    server = "Granian" if under_granian else "gunicorn"
    bare_app = "bench._bare_wsgi:application" if under_granian else "bench._bare_wsgi"
    print(
        f"\nHTTP: {server}, {label}: {workers} workers x {threads} threads, wrk {connections} connections,"
        f" {seconds} s each"
    )
    endpoints = (
        ("me", "/api/v1/me", auth, None),
        ("checks", "/api/v1/entitlements/check", {}, check_lua),
        ("verify", "/api/v1/keys/verify", {}, verify_lua),
    )
    figures = {}
    with serve() as base:  # throughput: no access log to write
        for _, path, headers, lua in endpoints:  # warm-up: every thread's first request of each kind
            wrk(f"{base}{path}", headers=headers, seconds=1, connections=connections, lua=lua)
        for name, path, headers, lua in endpoints:
            figures[name] = loaded(
                base, path, seconds=seconds, connections=connections, headers=headers, lua=lua
            )
    # the same checks through Django's whole request cycle (API_FAST_LANE=0): what the fast lane saves
    with serve(extra_env={"API_FAST_LANE": "0"}) as base:
        path = "/api/v1/entitlements/check"
        wrk(f"{base}{path}", headers={}, seconds=1, connections=connections, lua=check_lua)
        figures["chain"] = loaded(
            base, path, seconds=seconds, connections=connections, headers={}, lua=check_lua
        )
    # the floor: the same requests to a WSGI app that does nothing, under the same gunicorn settings
    with serve(app=bare_app) as base:
        path = "/api/v1/entitlements/check"
        wrk(f"{base}{path}", headers={}, seconds=1, connections=connections, lua=check_lua)
        figures["bare"] = loaded(
            base, path, seconds=seconds, connections=connections, headers={}, lua=check_lua
        )
    checks, verify, me, bare = figures["checks"], figures["verify"], figures["me"], figures["bare"]
    print("  " + fmt_http("POST /api/v1/entitlements/check", checks))
    print("  " + fmt_http("POST /api/v1/keys/verify", verify))
    print("  " + fmt_http("GET /api/v1/me (baseline)", me))
    print("  " + fmt_http("checks, fast lane off", figures["chain"]))
    print("  " + fmt_http("same POSTs, bare WSGI app (floor)", bare))
    print(
        f"  => checks/s = {checks['rps'] / max(me['rps'], 1e-9):.0%} and verifications/s = {verify['rps'] / max(me['rps'], 1e-9):.0%} of the trivial authenticated endpoint"
    )
    print("  CPU time per request (steadier than req/s on a shared machine):")
    print("  " + fmt_cpu("POST /api/v1/entitlements/check", checks))
    print("  " + fmt_cpu("POST /api/v1/keys/verify", verify))
    print("  " + fmt_cpu("GET /api/v1/me (baseline)", me))
    print("  " + fmt_cpu("checks, fast lane off", figures["chain"]))
    print("  " + fmt_cpu("same POSTs, bare WSGI app (floor)", bare))
    print(
        f"  => server CPU per check = {checks['cpu_us']['server'] / max(me['cpu_us']['server'], 1e-9):.0%} of /me's,"
        f" of which the bare server is {bare['cpu_us']['server'] / max(checks['cpu_us']['server'], 1e-9):.0%};"
        f" checks/s = {checks['rps'] / max(bare['rps'], 1e-9):.0%} of the bare server's"
    )

    # server-side latency: a second server that logs its own per-request time (gunicorn's %(D)s,
    # Granian's dt_ms), at a lower load (2 connections) so that queueing behind the load generator
    # does not count
    with serve(access_log=log) as base:
        for _, path, headers, lua in endpoints:
            wrk(f"{base}{path}", headers=headers, seconds=1, connections=2, lua=lua)
        time.sleep(0.5)
        open(log, "w").close()
        for _, path, headers, lua in endpoints:
            wrk(f"{base}{path}", headers=headers, seconds=seconds, connections=2, lua=lua)
        time.sleep(0.5)
    print(
        f"\n  server-side ({label}, {'Granian dt_ms' if under_granian else 'gunicorn %(D)s'}, 2 connections)"
    )
    for name, path in (
        ("checks", "/api/v1/entitlements/check"),
        ("verify", "/api/v1/keys/verify"),
        ("me", "/api/v1/me"),
    ):
        samples = server_side_ms(log, path, unit_ms=1.0 if under_granian else 0.001)
        figures["p99_" + name] = samples
        print(f"  {path:<32} {summary(samples)}")
    os.unlink(log)
    return figures


if __name__ == "__main__":
    main()
