from celery import shared_task

from billing.metering.credits_tasks import credits_expire_task  # noqa: F401  (registers metering.credits_expire)
from billing.metering.sync import SyncAlreadyRunning, meter_sync_run


@shared_task(name="metering.meter_sync", bind=True, acks_late=True, max_retries=5)
def meter_sync_task(self) -> dict | None:
    """Report every customer's usage to their provider (nightly, fanned out to every tenant).
    Provider outages are handled per customer inside the run (retried, then left for the next run);
    only an unexpected error retries the whole run, with exponential backoff. A run already in
    progress for the tenant is success, not a retry."""
    try:
        run = meter_sync_run(trigger="beat")
    except SyncAlreadyRunning:
        return None
    except Exception as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc
    return {"run": run.pk, "status": run.status, "reports": run.reports, "failures": run.failures}


@shared_task(name="metering.partitions_ahead", acks_late=True)
def partitions_ahead_task() -> None:
    """Create this month's and the next two months' event partitions before events need them."""
    from billing.metering.services import partitions_ahead

    partitions_ahead()


@shared_task(name="metering.rollups_fold", acks_late=True)
def rollups_fold_task() -> int:
    """Fold pending rollup deltas (ingestion folds after its batches; this catches quiet tenants)."""
    from billing.metering.rollups import rollups_fold, rollups_vacuum_if_due

    touched = rollups_fold()
    rollups_vacuum_if_due()
    return touched
