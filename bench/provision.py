"""Tenant creation: from a pre-cloned spare schema, cloning the template inline, and (the baseline)
migrating a new schema from scratch.

    .venv/bin/python bench/provision.py [--clones 10] [--scratch 3]

Target (issue 2): < 0.5 s per tenant by cloning.
"""

import argparse
import statistics
import time

from _harness import setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from tenants.selectors import tenant_get_by_slug  # noqa: E402
from tenants.services import (  # noqa: E402
    spares_drop,
    spares_refill,
    tenant_create,
    tenant_delete,
    tenant_template_ensure,
)


def drop(slug: str) -> None:
    tenant = tenant_get_by_slug(slug=slug)
    if tenant:
        tenant_delete(tenant=tenant)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{slug.replace("-", "_")}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clones", type=int, default=10)
    parser.add_argument("--scratch", type=int, default=3)
    args = parser.parse_args()
    tenant_template_ensure()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            [settings.TENANT_BASE_SCHEMA],
        )
        tables = cursor.fetchone()[0]

    spare_times = []
    for i in range(args.clones):
        slug = f"bench-spare-{i}"
        drop(slug)
        spares_refill(count=1)  # not timed: the pool is refilled in the background
        started = time.perf_counter()
        tenant_create(slug=slug, name="bench")
        spare_times.append(time.perf_counter() - started)
        print(f"\rfrom a spare {i + 1}/{args.clones}", end="", flush=True)
    print()
    spares_drop()

    clone_times = []
    for i in range(args.clones):
        slug = f"bench-clone-{i}"
        drop(slug)
        started = time.perf_counter()
        tenant_create(slug=slug, name="bench")
        clone_times.append(time.perf_counter() - started)
        print(f"\rclone {i + 1}/{args.clones}", end="", flush=True)
    print()

    scratch_times = []
    for i in range(args.scratch):
        schema = f"bench_scratch_{i}"
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        call_command("migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=0)
        connection.set_schema_to_public()
        scratch_times.append(time.perf_counter() - started)
        print(f"\rmigrate-from-scratch {i + 1}/{args.scratch}", end="", flush=True)
    print()

    for i in range(args.clones):
        drop(f"bench-clone-{i}")
        drop(f"bench-spare-{i}")
    for i in range(args.scratch):
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "bench_scratch_{i}" CASCADE')

    spare, clone, scratch = (statistics.median(t) for t in (spare_times, clone_times, scratch_times))
    print(f"\ntenant creation ({tables} tables in the template schema)")
    print(
        f"  from a spare (rename)            median {spare:6.3f} s   max {max(spare_times):6.3f} s   n={len(spare_times)}"
    )
    print(
        f"  clone template inline            median {clone:6.3f} s   max {max(clone_times):6.3f} s   n={len(clone_times)}"
    )
    print(
        f"  baseline: migrate from scratch   median {scratch:6.3f} s   max {max(scratch_times):6.3f} s   n={len(scratch_times)}"
    )
    print(
        f"  spare {scratch / spare:.0f}x and inline clone {scratch / clone:.1f}x faster than migrating from scratch"
    )
    verdict = {True: "met", False: "NOT met"}
    print(f"  target < 0.5 s per tenant: spare {verdict[spare < 0.5]}, inline clone {verdict[clone < 0.5]}")


if __name__ == "__main__":
    main()
