from celery import shared_task

from billing.invoicing.credit_notes import credit_note_refund_retry, credit_notes_refund_sweep
from billing.invoicing.engine import charges_due_run
from billing.providers.base import ProviderUnavailable

REFUND_RETRY_MAX_SECONDS = 6 * 3600


@shared_task(name="invoicing.engine_charge_due", acks_late=True, ignore_result=True)
def engine_charge_due() -> int:
    """Close and charge our engine's subscriptions (TossPayments, Stripe engine mode) whose period
    ended or whose retry is due (every tenant). A charge the provider could not take stays pending
    and is retried at the next run, so no retry here."""
    return charges_due_run()


@shared_task(
    name="invoicing.credit_note_refund", bind=True, acks_late=True, ignore_result=True, max_retries=10
)
def credit_note_refund(self, credit_note_id: int) -> str:
    """Ask the provider again for a credit note's refund (same idempotency key: never twice); a
    provider still down is retried with backoff (1, 2, 4 … min, at most 6 h apart)."""
    try:
        return credit_note_refund_retry(credit_note_id=credit_note_id).status
    except ProviderUnavailable as exc:
        raise self.retry(
            exc=exc, countdown=min(60 * 2**self.request.retries, REFUND_RETRY_MAX_SECONDS)
        ) from exc


@shared_task(name="invoicing.credit_notes_sweep", acks_late=True, ignore_result=True)
def credit_notes_sweep() -> int:
    """Re-enqueue refunds still pending (a lost message, retries exhausted): every tenant, hourly."""
    return credit_notes_refund_sweep()
