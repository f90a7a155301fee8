"""Credit jobs. Registration: `billing/metering/tasks.py` (autodiscovered) imports this module, and
the beat entry `"credits-expire": {"task": "metering.credits_expire", "schedule": 3600.0}` (no
`tenant_schemas`: fanned out to every tenant) sits in CELERY_BEAT_SCHEDULE."""

import logging

from celery import shared_task

from billing.metering.credits import credits_expire

logger = logging.getLogger(__name__)


@shared_task(name="metering.credits_expire", acks_late=True)
def credits_expire_task() -> int:
    """Write `expire` entries for grants past their expiry (idempotent: a re-run expires nothing)."""
    return credits_expire()


@shared_task(name="metering.credits_allowances", acks_late=True)
def credits_allowances_task() -> int:
    """Grant each customer's tier allowance for its current period, once (hourly, every tenant)."""
    from billing.metering.credits import credits_allowances_renew

    return credits_allowances_renew()


@shared_task(name="metering.credits_allowance_for", acks_late=True, ignore_result=True)
def credits_allowance_for_task(external_id: str) -> bool:
    """Grant one customer's tier allowance for its current period, once (its membership changed)."""
    from billing.memberships.models import Customer
    from billing.metering.credits import credits_allowance_for

    customer = Customer.objects.filter(external_id=external_id).first()
    return customer is not None and credits_allowance_for(customer=customer) is not None


@shared_task(name="metering.credits_allowance_for_many", acks_late=True, ignore_result=True)
def credits_allowance_for_many_task(external_ids: list[str]) -> int:
    """credits_allowance_for_task for many customers at once (a batch of provider events changed
    their memberships); returns the number granted."""
    from billing.memberships.models import Customer
    from billing.metering.credits import credits_allowance_for

    granted = 0
    for customer in Customer.objects.filter(external_id__in=external_ids).order_by("pk"):
        try:
            granted += credits_allowance_for(customer=customer) is not None
        except Exception:  # one customer's failure is not the others': the hourly job retries it
            logger.warning(
                "allowance of %s failed; the hourly job will retry", customer.external_id, exc_info=True
            )
    return granted
