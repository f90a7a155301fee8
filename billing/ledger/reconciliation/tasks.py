from celery import shared_task

from billing.ledger.reconciliation.services import reconciliation_daily


@shared_task(name="reconciliation.daily", acks_late=True)
def reconciliation_daily_task() -> list[dict]:
    """Yesterday's reconciliation of every provider (daily, fanned out to every tenant). A day
    already reconciled is answered as it stands; a provider that did not answer is left `failed`
    and tried again by the next day's job."""
    runs = reconciliation_daily()
    return [{"run": run.pk, "provider": run.provider, "status": run.status} for run in runs]
