from celery import shared_task

from accounts.services import idempotency_purge


@shared_task(name="accounts.idempotency_purge", acks_late=True)
def idempotency_purge_task() -> int:
    """Delete expired Idempotency-Key records in the task's tenant (fanned out by beat)."""
    return idempotency_purge()
