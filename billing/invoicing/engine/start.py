"""Starting one of our engine's subscriptions once a provider's checkout saved a payment method
(engine/toss.py, engine/stripe.py)."""

from __future__ import annotations

import datetime as dt

from billing.invoicing.close import first_invoice
from billing.invoicing.engine.charging import _settle
from billing.invoicing.engine.core import (
    _adapter,
    _bill,
    _emit,
    _esub,
    _order_id,
    _step,
    _subscription_data,
    _subscription_id,
)
from billing.providers.base import ProviderError, ProviderUnavailable
from billing.providers.models import (
    EngineCharge,
    EngineChargeStatus,
    EngineCheckout,
    EngineStatus,
    EngineSubscription,
)


def subscription_start(
    checkout: EngineCheckout,
    *,
    method: str,
    card_company: str,
    card_number: str,
    digest: str,
    now: dt.datetime,
) -> EngineSubscription:
    """Under the checkout's row lock: the saved `method` starts the checkout's subscription (or
    replaces the method of one whose first charge was refused: another card is a new attempt).
    A trial is completed at once (nothing to charge until it ends); otherwise the first period's
    charge row and its invoice are written, to be settled by `subscription_first_charge` once
    this transaction commits."""
    adapter = _adapter(checkout.provider, checkout.mode)
    sub = checkout.subscription
    if sub is None:
        trial_end = now + dt.timedelta(days=checkout.trial_days) if checkout.trial_days else None
        sub = EngineSubscription(
            id=_subscription_id(checkout.provider), provider=checkout.provider, mode=checkout.mode,
            customer=checkout.customer, customer_key=checkout.customer_key, email=checkout.email,
            price=checkout.price, interval=checkout.interval, unit_amount=checkout.unit_amount,
            currency=checkout.currency, quantity=checkout.quantity,
            status=EngineStatus.TRIALING if trial_end else EngineStatus.INCOMPLETE,
            period_start=now, period_end=trial_end or now,
        )  # fmt: skip
    sub.billing_key = method
    sub.card_company, sub.card_number = card_company[:32], card_number[:32]
    sub.save()
    checkout.subscription, checkout.auth_key_digest = sub, digest
    checkout.error_code, checkout.error_message = "", ""
    if sub.status == EngineStatus.TRIALING:  # nothing to charge before the trial ends
        checkout.completed_at = now
        checkout.save()
        _emit(adapter, sub, "subscription.created", _subscription_data(sub, checkout_id=checkout.pk), at=now)
        return sub
    charge = EngineCharge.objects.filter(subscription=sub, period=1).first()
    if charge is None:
        charge = EngineCharge(subscription=sub, period=1, amount=0, currency=sub.currency)
    elif charge.status == EngineChargeStatus.FAILED:  # another card after a refusal: a new attempt
        charge.attempt += 1
        charge.status = EngineChargeStatus.PENDING
    if charge.invoice_id is None:  # the first period's fee, invoiced before the charge
        invoice = first_invoice(sub=_esub(sub), period_start=now, period_end=now + _step(sub.interval),
                                attempt=charge.attempt, checkout_id=str(checkout.pk))  # fmt: skip
        _bill(charge, invoice)
    charge.order_id = _order_id(sub, charge)
    charge.save()
    checkout.save()
    return sub


def subscription_first_charge(
    checkout: EngineCheckout, *, now: dt.datetime, declined: type[ProviderError]
) -> None:
    """Charge a started subscription's first period (after the start committed) and say how it
    went: nothing (paid, or a trial), `declined` (the page shows why; another card may try again),
    or ProviderUnavailable (the provider did not answer, or a concurrent reload holds the charge:
    reloading later is safe)."""
    if checkout.completed_at is not None or checkout.subscription_id is None:
        return
    outcome, error = _settle(checkout.subscription_id, now=now, at_checkout=True)
    checkout.refresh_from_db()
    if outcome == "unavailable" or (outcome == "skipped" and checkout.completed_at is None):
        raise error or ProviderUnavailable("The payment is being processed; reload this page in a moment.")
    if outcome == "failed":
        raise declined(checkout.error_message, details={"provider_code": checkout.error_code})
