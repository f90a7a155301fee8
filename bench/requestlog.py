"""What the API request log (kernel/requestlog.py) costs a request, in-process.

    .venv/bin/python bench/requestlog.py [-n 200000]

Same run, same machine: a POST /api/v1/entitlements/check request passed through
ApiRequestLogMiddleware around a view that does nothing, beside the same request passed straight to
that view (the baseline), and beside the in-process cost of `entitlement_check` itself, so the
middleware's share of a check is visible whatever the machine's load. Also the background flush:
entries per second written to Redis in one pipeline per interval.
"""

import argparse
import time

from _harness import bench_tenant, setup_django, timed

setup_django()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from billing.entitlements.services import entitlement_check  # noqa: E402
from billing.memberships.services import customer_upsert  # noqa: E402
from kernel import requestlog  # noqa: E402
from monetize.middleware import ApiRequestLogMiddleware  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200_000)
    args = parser.parse_args()
    tenant, host, api_key = bench_tenant()

    ok = HttpResponse(b"{}", content_type="application/json")

    def view(request):
        return ok

    request = RequestFactory().post(
        "/api/v1/entitlements/check",
        data=b'{"customer":"c1","feature":"private_projects"}',
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=f"Bearer {api_key}",
        HTTP_IDEMPOTENCY_KEY="bench-1",
    )
    request.tenant = tenant
    logged = ApiRequestLogMiddleware(view)
    for _ in range(1000):  # warm-up (and the flusher thread started)
        logged(request)
    requestlog.request_log_flush()

    # interleaved rounds, so a load change on the machine hits both alike
    bare_samples, logged_samples = [], []
    rounds = 10
    for _ in range(rounds):
        bare_samples += timed(lambda: view(request), args.n // rounds)
        logged_samples += timed(lambda: logged(request), args.n // rounds)
    with tenant_context(tenant):
        customer_upsert(external_id="bench-requestlog")
        entitlement_check(customer="bench-requestlog", feature="private_projects")
        checks = timed(
            lambda: entitlement_check(customer="bench-requestlog", feature="private_projects"), 5000
        )

    started = time.perf_counter()
    for _ in range(50_000):
        requestlog.request_log_append(
            schema=tenant.schema_name, entry={"at": 0, "path": "/api/v1/x", "status": 200}
        )
    appended = time.perf_counter() - started
    started = time.perf_counter()
    written = requestlog.request_log_flush()
    flushed = time.perf_counter() - started

    def us(samples, pct):
        ordered = sorted(samples)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]

    def line(label, samples):
        mean = 1000 * sum(samples) / len(samples)
        return f"  {label:<36} n={len(samples):>6}  mean={mean:8.2f} µs  p50={us(samples, 50):8.2f} µs  p99={us(samples, 99):8.2f} µs"

    print("\nin-process, same run")
    print(line("view alone (baseline)", bare_samples))
    print(line("view + ApiRequestLogMiddleware", logged_samples))
    print(line("entitlement_check (cached, scale)", checks))
    added = us(logged_samples, 50) - us(bare_samples, 50)
    print(f"  => the log adds {added:.2f} µs per call (p50), {100 * added / us(checks, 50):.1f}% of an in-process "
          f"entitlement check's p50")  # fmt: skip
    print(f"  append alone: {1e6 * appended / 50_000:.2f} µs per entry; "
          f"one flush took {written} entries (buffer cap {requestlog.settings.REQUEST_LOG_BUFFER_MAX}) in "
          f"{1000 * flushed:.1f} ms; each tenant's list stays capped at {requestlog.settings.REQUEST_LOG_MAX}")  # fmt: skip


if __name__ == "__main__":
    main()
