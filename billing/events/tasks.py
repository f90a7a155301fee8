from celery import shared_task

from billing.events.services import deliveries_sweep, delivery_attempt


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> str:
    """POST one outbound event to one endpoint (retries are scheduled from the delivery row)."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="events.sweep", acks_late=True, ignore_result=True)
def sweep_deliveries() -> int:
    """Re-enqueue outbound deliveries left pending or due for a retry (every tenant)."""
    return deliveries_sweep()
