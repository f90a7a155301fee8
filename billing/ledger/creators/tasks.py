from celery import shared_task

from billing.ledger.creators.earnings import earnings_release


@shared_task(name="creators.earnings_release", acks_late=True, ignore_result=True)
def earnings_release_due() -> int:
    """Make available the earnings whose hold ended (every tenant, daily; sandbox payments on the
    sandbox's clock). Re-runs release nothing twice."""
    return earnings_release()
