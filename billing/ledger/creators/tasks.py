from celery import shared_task

from billing.ledger.creators.earnings import earnings_release


@shared_task(name="creators.earnings_release", acks_late=True, ignore_result=True)
def earnings_release_due() -> int:
    """Make available the earnings whose hold ended (every tenant, daily; sandbox payments on the
    sandbox's clock). Re-runs release nothing twice."""
    return earnings_release()


PAYOUT_RETRY_MAX_SECONDS = 6 * 3600


@shared_task(name="creators.payout_transfer", bind=True, acks_late=True, ignore_result=True, max_retries=10)
def payout_transfer_task(self, payout_id: int) -> str:
    """Transfer a requested payout at its provider (keyed `payout-<id>`: never twice); a provider
    that does not answer is retried with backoff (1, 2, 4 … min, at most 6 h apart)."""
    from billing.ledger.creators.payouts import payout_transfer
    from billing.providers.base import ProviderUnavailable

    try:
        return payout_transfer(payout_id=payout_id).status
    except ProviderUnavailable as exc:
        raise self.retry(
            exc=exc, countdown=min(60 * 2**self.request.retries, PAYOUT_RETRY_MAX_SECONDS)
        ) from exc


@shared_task(name="creators.payouts_scheduled", acks_late=True, ignore_result=True)
def payouts_scheduled() -> int:
    """The tenant's scheduled payouts on its payout day (weekly: Mondays, monthly: the 1st), and a
    retry of transfers a lost task left requested (every tenant, daily)."""
    from billing.ledger.creators.payouts import payouts_scheduled_run

    return payouts_scheduled_run()
