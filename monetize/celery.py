"""Celery app. Tasks carry their tenant's schema (tenant-schemas-celery): a task sent while tenant A
is active runs in A's schema. Beat uses the tenant-aware scheduler, which fans an entry out to every
tenant unless the entry names `tenant_schemas`."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")

app = CeleryApp("monetize")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="monetize.schema_probe", bind=True, acks_late=True)
def schema_probe(self) -> dict:
    """Report the schema the task ran in and how many users it sees there (used by tests and
    by operators to check that a worker routes tasks to the right tenant)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    return {"schema": connection.schema_name, "users": get_user_model().objects.count()}
