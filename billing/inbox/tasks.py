from celery import shared_task

from billing.inbox.drain import inbox_drain
from billing.inbox.services import inbox_sweep


@shared_task(name="webhooks.process", acks_late=True, ignore_result=True)
def process_inbox_event(inbox_id: int | None = None) -> int:
    """Apply a stored provider event -- and every other event of the tenant waiting then, in
    batches (billing.inbox.drain). Retries are scheduled by the service, from the inbox row."""
    return inbox_drain(inbox_id=inbox_id)


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True)
def sweep_inbox() -> int:
    """Re-enqueue inbox rows left pending or due for a retry (every tenant)."""
    return inbox_sweep()
