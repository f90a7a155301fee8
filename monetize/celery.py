"""Celery app. Tasks carry their tenant's schema (tenant-schemas-celery): a task sent while tenant A
is active runs in A's schema. Beat uses the tenant-aware scheduler, which fans an entry out to every
tenant unless the entry names `tenant_schemas`."""

import os

from celery.signals import task_postrun, task_prerun
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")

app = CeleryApp("monetize", task_cls="kernel.celery_task:MonetizeTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="monetize.schema_probe", bind=True, acks_late=True)
def schema_probe(self) -> dict:
    """Report the schema the task ran in, how many users and customers it sees there (customers are
    only in tenant schemas) and its database session's backend pid (used by tests and by operators
    to check that a worker routes tasks to the right tenant and keeps its connection)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from billing.memberships.models import Customer

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    return {
        "schema": connection.schema_name,
        "users": get_user_model().objects.count(),
        "customers": Customer.objects.count(),
        "backend": backend,
    }


@app.task(name="monetize.noop", ignore_result=False)
def noop() -> None:
    """Does nothing: the baseline bench/webhooks.py measures a worker's own per-task cost with."""


@task_prerun.connect
@task_postrun.connect
def _drop_broken_connections(task=None, **kwargs) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return  # eager: the caller's connection and transaction
    # the worker keeps its database connection across tasks (CELERY_DB_REUSE_MAX); like a request,
    # a task must not start on one that failed (PostgreSQL restarted) or outlived CONN_MAX_AGE
    from django.db import close_old_connections

    close_old_connections()
