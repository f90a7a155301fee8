"""Background work on a real Celery worker process (Redis broker, the test database)."""

import datetime as dt
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import IdempotencyRecord
from monetize.celery import app as celery_app
from monetize.celery import schema_probe
from tests.helpers import committed

pytestmark = pytest.mark.worker


def test_task_runs_in_the_schema_it_was_sent_from(alpha, beta, worker):
    with tenant_context(alpha.tenant):
        from_alpha = schema_probe.delay()
    with tenant_context(beta.tenant):
        from_beta = schema_probe.delay()
    # beta was provisioned with two users, alpha with one: the counts prove which schema was read
    alpha_seen, beta_seen = from_alpha.get(timeout=60), from_beta.get(timeout=60)
    assert (alpha_seen["schema"], alpha_seen["users"]) == ("alpha", 1)
    assert (beta_seen["schema"], beta_seen["users"]) == ("beta", 2)


def test_worker_keeps_its_database_connection_across_tasks(alpha, beta, worker):
    """Celery's Django fixup closes the connection around every task unless CELERY_DB_REUSE_MAX is
    set: a new PostgreSQL session per task (a quarter of a provider event's cost)."""
    backends = set()
    for fixture in (alpha, beta, alpha, beta):
        with tenant_context(fixture.tenant):
            backends.add(schema_probe.delay().get(timeout=60)["backend"])
    assert len(backends) == 1


def test_worker_caches_the_tenant_lookup(alpha):
    """tenant-schemas-celery reads the tenant row before every task unless told to cache it."""
    assert celery_app.conf.task_tenant_cache_seconds > 0
    schema_probe.get_tenant_for_schema("alpha")  # in this process: cached now
    with CaptureQueriesContext(connection) as queries:
        assert schema_probe.get_tenant_for_schema("alpha").schema_name == "alpha"
    assert len(queries) == 0


def test_beat_entry_fans_out_to_every_tenant(alpha, beta, worker):
    """The tenant-aware scheduler sends `idempotency-purge` once per tenant; the worker purges each."""
    from tenant_schemas_celery.scheduler import TenantAwareScheduler

    def seed():
        for fixture in (alpha, beta):
            with tenant_context(fixture.tenant):
                IdempotencyRecord.objects.create(
                    key="old",
                    request_hash="x",
                    method="POST",
                    path="/",
                    expires_at=timezone.now() - dt.timedelta(hours=1),
                )

    def remaining():
        counts = []
        for fixture in (alpha, beta):
            with tenant_context(fixture.tenant):
                counts.append(IdempotencyRecord.objects.filter(key="old").count())
        return counts

    committed(seed)
    try:
        assert committed(remaining) == [1, 1]
        scheduler = TenantAwareScheduler(app=celery_app, lazy=True)
        scheduler.merge_inplace({"idempotency-purge": settings.CELERY_BEAT_SCHEDULE["idempotency-purge"]})
        (entry,) = [e for name, e in scheduler.schedule.items() if name.startswith("idempotency-purge")]
        with celery_app.producer_or_acquire() as producer:
            scheduler.apply_entry(entry, producer=producer)
        deadline = time.monotonic() + 30
        while committed(remaining) != [0, 0] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert committed(remaining) == [0, 0]
    finally:

        def cleanup():
            for fixture in (alpha, beta):
                with tenant_context(fixture.tenant):
                    IdempotencyRecord.objects.filter(key="old").delete()

        committed(cleanup)


def test_a_task_for_a_tenant_that_no_longer_exists_is_not_run(worker):
    """A message sent before its tenant was deleted (a retry due later, a drain) names a schema with
    no tenant: tenant-schemas-celery cannot switch to it and would run the task on the public schema,
    where it can only fail. It ends quietly instead (kernel.celery_task.MonetizeTask)."""
    result = schema_probe.apply_async(headers={"_schema_name": "gone_since_sent"})
    assert result.get(timeout=60) is None


def test_a_task_whose_tenant_is_deleted_while_the_worker_remembers_it_ends_quietly(live_tenant, worker):
    """The worker caches tenant lookups: a task for a tenant deleted since then is switched to a
    schema that is gone ("relation … does not exist"), which is the tenant's end, not a failure."""
    from django.db import connection as conn

    schema = live_tenant.tenant.schema_name
    assert schema_probe.apply_async(headers={"_schema_name": schema}).get(timeout=60)["schema"] == schema

    def drop_schema_only():  # the row stays (as the worker's cache does): only the schema is gone
        with conn.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')

    committed(drop_schema_only)
    assert schema_probe.apply_async(headers={"_schema_name": schema}).get(timeout=60) is None
