"""The base class of every Celery task: tenant-schemas-celery's TenantTask, plus what happens to a
message whose tenant is gone.

A task carries its schema in a header and tenant-schemas-celery switches the worker's connection to
it before the task runs (a `task_prerun` receiver). When the tenant was deleted after the message
was sent -- a retry due later, a drain published just before the delete -- that switch fails
inside the signal, Celery logs the receiver's error and runs the task anyway, on whatever schema
the connection was on (the public one). Such a task can only fail ("relation … does not exist"),
and a task that fails that way still holds the worker while it does, logs a traceback, and (with
a retry policy) comes back. Here a task whose connection is not on its own schema is not run, and
a task whose schema disappears while it runs (the worker's tenant cache still held the tenant)
ends quietly too: there is nothing left to do for a tenant that no longer exists.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.db.utils import ProgrammingError
from django_tenants.utils import get_public_schema_name, schema_exists
from tenant_schemas_celery.app import get_schema_name_from_task
from tenant_schemas_celery.task import TenantTask

logger = logging.getLogger(__name__)


class MonetizeTask(TenantTask):
    abstract = True

    def __call__(self, *args, **kwargs):
        if self.request.called_directly or self.request.is_eager:  # the caller's schema and transaction
            return super().__call__(*args, **kwargs)
        schema = get_schema_name_from_task(self, kwargs) or get_public_schema_name()
        if connection.schema_name != schema:
            return self._tenant_gone(schema)
        try:
            return super().__call__(*args, **kwargs)
        except ProgrammingError:
            if schema != get_public_schema_name() and not schema_exists(schema):
                return self._tenant_gone(schema)
            raise

    def _tenant_gone(self, schema: str) -> None:
        logger.info(
            "%s[%s] not run: its tenant (schema %s) no longer exists", self.name, self.request.id, schema
        )
        return None
