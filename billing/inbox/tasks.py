from celery import shared_task

from billing.inbox.services import inbox_process, inbox_sweep


@shared_task(name="webhooks.process", acks_late=True, ignore_result=True)
def process_inbox_event(inbox_id: int) -> str:
    """Apply one stored provider event (retries are scheduled by the service, from the inbox row)."""
    return inbox_process(inbox_id=inbox_id)


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True)
def sweep_inbox() -> int:
    """Re-enqueue inbox rows left pending or due for a retry (every tenant)."""
    return inbox_sweep()
