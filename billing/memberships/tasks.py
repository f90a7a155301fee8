from celery import shared_task

from billing.memberships.services import checkouts_expire


@shared_task(name="memberships.checkouts_expire", acks_late=True)
def checkouts_expire_task() -> int:
    """Open checkouts past their expiry become expired (fanned out to every tenant)."""
    return checkouts_expire()
