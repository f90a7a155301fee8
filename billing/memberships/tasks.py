from celery import shared_task

from billing.memberships.services import checkouts_expire


@shared_task(name="memberships.checkouts_expire", acks_late=True)
def checkouts_expire_task() -> int:
    """Open checkouts past their expiry become expired (fanned out to every tenant)."""
    return checkouts_expire()


@shared_task(
    name="memberships.cancel_replaced", bind=True, acks_late=True, ignore_result=True, max_retries=10
)
def cancel_replaced_task(self, provider: str, subscription_id: str) -> None:
    """Cancel at its provider the subscription of a membership a newer one of the same owner replaced
    (the customer is never billed for two plans); a provider that does not answer is retried with
    backoff (1, 2, 4 … min, at most 6 h apart)."""
    from billing.memberships.services import membership_cancel_replaced
    from billing.providers.base import ProviderUnavailable

    try:
        membership_cancel_replaced(provider=provider, subscription_id=subscription_id)
    except ProviderUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(60 * 2**self.request.retries, 6 * 3600)) from exc


@shared_task(name="memberships.replaced_sweep", acks_late=True, ignore_result=True)
def replaced_sweep_task() -> int:
    """Replaced subscriptions the provider has not confirmed canceled are asked again (hourly, every
    tenant): a cancel task the broker lost or a provider that failed ten times."""
    from billing.memberships.services._common import memberships_replaced_sweep

    return memberships_replaced_sweep()
