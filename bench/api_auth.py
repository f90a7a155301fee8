"""Cost of integrator-key authentication.

    .venv/bin/python bench/api_auth.py [--seconds 5] [--connections 8]

1. in-process: `GET /api/v1/me` (key check) vs `GET /api/v1/ping` (no auth) through Django's full
   middleware stack, no network; and the key lookup alone (Redis hit) beside a raw Redis GET.
2. HTTP: the same two endpoints under gunicorn (2 sync workers) with wrk, concurrent connections.

Target (issue 2): the key check costs < 0.5 ms.
"""

import argparse

from _harness import bench_tenant, fmt_http, gunicorn, setup_django, summary, timed, wrk

setup_django()

from django.test import Client  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.selectors import api_key_authenticate  # noqa: E402
from kernel.redis import get_redis  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    tenant, host, key = bench_tenant()

    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")
    anonymous = Client(HTTP_HOST=host)
    assert client.get("/api/v1/me").status_code == 200
    for _ in range(200):  # warm caches and code paths
        client.get("/api/v1/me")
        anonymous.get("/api/v1/ping")
    me = timed(lambda: client.get("/api/v1/me"), args.n)
    ping = timed(lambda: anonymous.get("/api/v1/ping"), args.n)
    with tenant_context(tenant):
        lookup = timed(lambda: api_key_authenticate(raw_key=key), args.n)
    client_redis = get_redis()
    client_redis.set("bench-raw", 1)
    raw_redis = timed(lambda: client_redis.get("bench-raw"), args.n)

    print("\nin-process (Django test client, full middleware, no network)")
    print(f"  GET /api/v1/me   (key check)     {summary(me)}")
    print(f"  GET /api/v1/ping (baseline)      {summary(ping)}")
    print(f"  key lookup alone (Redis hit)     {summary(lookup)}")
    print(f"  raw redis-py GET (baseline)      {summary(raw_redis)}")
    cost = sorted(me)[len(me) // 2] - sorted(ping)[len(ping) // 2]
    print(f"  => key check adds {cost:.3f} ms at the median (target < 0.5 ms)")

    print(f"\nHTTP: gunicorn, 2 sync workers, wrk {args.connections} connections, {args.seconds} s each")
    with gunicorn(workers=2) as base:
        headers = {"Host": host}
        wrk(f"{base}/api/v1/ping", headers=headers, seconds=1, connections=args.connections)  # warm-up
        ping_http = wrk(
            f"{base}/api/v1/ping", headers=headers, seconds=args.seconds, connections=args.connections
        )
        me_http = wrk(
            f"{base}/api/v1/me", headers={**headers, "Authorization": f"Bearer {key}"}, seconds=args.seconds,
            connections=args.connections,
        )  # fmt: skip
    print("  " + fmt_http("GET /api/v1/me (key check)", me_http))
    print("  " + fmt_http("GET /api/v1/ping (baseline)", ping_http))
    print(f"  => throughput ratio me/ping {me_http['rps'] / ping_http['rps']:.2f}")


if __name__ == "__main__":
    main()
