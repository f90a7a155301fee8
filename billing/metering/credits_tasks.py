"""Credit jobs. Registration: `billing/metering/tasks.py` (autodiscovered) imports this module, and
the beat entry `"credits-expire": {"task": "metering.credits_expire", "schedule": 3600.0}` (no
`tenant_schemas`: fanned out to every tenant) sits in CELERY_BEAT_SCHEDULE."""

from celery import shared_task

from billing.metering.credits import credits_expire


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
