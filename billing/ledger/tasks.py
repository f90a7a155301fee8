from celery import shared_task

from billing.ledger.recognition import recognition_run_due


@shared_task(name="ledger.recognition_daily", acks_late=True, ignore_result=True)
def recognition_daily() -> int:
    """Recognize each complete UTC day not recognized yet (every tenant, hourly: the first run after
    midnight does yesterday; the others find it done and post nothing)."""
    return recognition_run_due()
