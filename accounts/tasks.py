from celery import shared_task

from accounts.services import api_keys_last_used_flush, idempotency_purge


@shared_task(name="accounts.idempotency_purge", acks_late=True)
def idempotency_purge_task() -> int:
    """Delete expired Idempotency-Key records in the task's tenant (fanned out by beat)."""
    return idempotency_purge()


@shared_task(name="accounts.keys_last_used_flush", acks_late=True)
def keys_last_used_flush_task() -> int:
    """Write the last-used times recorded in Redis to the key rows of the task's tenant."""
    return api_keys_last_used_flush()
