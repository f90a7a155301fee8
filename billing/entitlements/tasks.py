from celery import shared_task

from billing.entitlements.services import leases_purge


@shared_task(name="entitlements.leases_purge", acks_late=True)
def leases_purge_task() -> int:
    """Delete leases that ended more than a week ago (fanned out to every tenant by beat).
    Expired leases stop counting the moment they expire; this only keeps the table small."""
    return leases_purge()
