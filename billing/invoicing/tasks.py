from celery import shared_task

from billing.invoicing.toss_engine import charges_due_run


@shared_task(name="invoicing.toss_charge_due", acks_late=True, ignore_result=True)
def toss_charge_due() -> int:
    """Charge TossPayments subscriptions whose period ended or whose retry is due (every tenant).
    A charge Toss could not take stays pending and is retried at the next run, so no retry here."""
    return charges_due_run()
