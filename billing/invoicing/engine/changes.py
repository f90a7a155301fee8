"""Changes to our engine's subscriptions, asked for by membership services through the provider's
adapter (cancel, pause, change), and whose charge a provider's webhook names."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q

from billing.invoicing.close import proration_invoice
from billing.invoicing.engine.charging import _claim, _settle
from billing.invoicing.engine.core import (
    EngineSubscriptionInvalid,
    _adapter,
    _bill,
    _check_terms,
    _emit,
    _esub,
    _invoice_ref,
    _order_id,
    _subscription_data,
    engine_now,
)
from billing.providers.base import ProviderError
from billing.providers.models import (
    EngineCharge,
    EngineChargeKind,
    EngineChargeStatus,
    EngineStatus,
    EngineSubscription,
)


def _locked(subscription_id: str) -> EngineSubscription:
    sub = EngineSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    if sub is None:
        raise ProviderError("No such subscription.", code="subscription_not_found")
    if sub.status in (EngineStatus.CANCELED, EngineStatus.INCOMPLETE):
        raise EngineSubscriptionInvalid("The subscription has ended.", code="subscription_ended")
    return sub


def subscription_cancel(*, subscription_id: str, at_period_end: bool, now: dt.datetime | None = None) -> None:
    """At period end: no renewal (canceled when the period ends); now: canceled at once. A
    subscription that is past due or paused has no running period and ends at once."""
    with transaction.atomic():
        ended = EngineSubscription.objects.filter(pk=subscription_id, status=EngineStatus.CANCELED).exists()
        if ended:
            return  # already ended: a second cancel (a retried task, a second click) changes nothing
        sub = _locked(subscription_id)
        now = now or engine_now(sub.provider)
        adapter = _adapter(sub.provider, sub.mode)
        if at_period_end and sub.status in (EngineStatus.ACTIVE, EngineStatus.TRIALING):
            sub.cancel_at_period_end = True
            sub.save()
            _emit(adapter, sub, "subscription.updated", _subscription_data(sub), at=now)
            return
        sub.status, sub.next_retry_at = EngineStatus.CANCELED, None
        sub.save()
        EngineCharge.objects.filter(subscription=sub, status=EngineChargeStatus.FAILED).update(
            status=EngineChargeStatus.VOID
        )
        _emit(adapter, sub, "subscription.canceled", _subscription_data(sub), at=now)


def subscription_uncancel(*, subscription_id: str, now: dt.datetime | None = None) -> None:
    """Undo a cancellation scheduled for the period end: the subscription renews again. Nothing
    to undo (not scheduled) is a no-op, so a second click changes nothing."""
    with transaction.atomic():
        sub = _locked(subscription_id)
        if not sub.cancel_at_period_end:
            return
        now = now or engine_now(sub.provider)
        sub.cancel_at_period_end = False
        sub.save()
        _emit(_adapter(sub.provider, sub.mode), sub, "subscription.updated", _subscription_data(sub), at=now)


def subscription_pause(*, subscription_id: str, paused: bool, now: dt.datetime | None = None) -> None:
    """Paused: no charges. Resumed: a period that ended while paused is charged at the next run,
    from the resume on (the paused time is not billed)."""
    with transaction.atomic():
        sub = _locked(subscription_id)
        now = now or engine_now(sub.provider)
        if paused and sub.status in (EngineStatus.ACTIVE, EngineStatus.TRIALING, EngineStatus.PAST_DUE):
            sub.status = EngineStatus.PAUSED
        elif not paused and sub.status == EngineStatus.PAUSED:
            sub.status = EngineStatus.ACTIVE if sub.period_number else EngineStatus.TRIALING
            sub.failed_attempts, sub.first_failed_at, sub.next_retry_at = 0, None, None
            if sub.period_end <= now:
                sub.period_end = now
        else:
            raise EngineSubscriptionInvalid(
                f"A {sub.status} subscription cannot be {'paused' if paused else 'resumed'}."
            )
        sub.save()
        _emit(_adapter(sub.provider, sub.mode), sub, "subscription.updated", _subscription_data(sub), at=now)


def subscription_change(
    *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
) -> str:
    """Where the provider takes prorations (the sandbox, Stripe; adapter `prorates`), an upgrade
    (or a change during a trial) applies now and the difference for the rest of the period is
    invoiced and charged at once: (new total - old total) × remaining seconds ÷ period seconds,
    rounded down in the customer's favour (Stripe's `always_invoice`); returns "now". Otherwise,
    and for a downgrade, the next period is charged at the new terms: "at_period_end"."""
    from billing.tiers.models import Price

    price = Price.objects.filter(code=price_ref, active=True).first()
    if price is None:
        raise EngineSubscriptionInvalid(
            f"No active price '{price_ref}'.", code="unknown_price", details={"price": price_ref}
        )
    charge = None
    with transaction.atomic():
        sub = _locked(subscription_id)
        adapter = _adapter(sub.provider, sub.mode)
        _check_terms(adapter, currency=price.currency, interval=interval, amount=unit_amount * quantity)
        now = engine_now(sub.provider)
        old_total, new_total = sub.unit_amount * sub.quantity, unit_amount * quantity
        trialing = sub.status == EngineStatus.TRIALING
        if not getattr(adapter, "prorates", False) or (new_total < old_total and not trialing):
            sub.pending_price, sub.pending_unit_amount = price_ref, unit_amount
            sub.pending_interval, sub.pending_quantity = interval, quantity
            sub.save()
            return "at_period_end"
        remaining = max(0, int((sub.period_end - now).total_seconds()))
        period = max(1, int((sub.period_end - sub.period_start).total_seconds()))
        prorated = 0 if trialing else (new_total - old_total) * remaining // period
        old_price, old_quantity = sub.price, sub.quantity
        sub.price, sub.unit_amount, sub.interval, sub.quantity = price_ref, unit_amount, interval, quantity
        sub.pending_price, sub.pending_unit_amount, sub.pending_interval, sub.pending_quantity = (
            "",
            None,
            "",
            None,
        )
        sub.save()
        if prorated > 0:
            invoice = proration_invoice(
                sub=_esub(sub), old_price_code=old_price, old_quantity=old_quantity, amount=prorated, at=now,
                period_end=sub.period_end,
            )  # fmt: skip
            charge = EngineCharge(subscription=sub, period=sub.period_number, kind=EngineChargeKind.PRORATION)
            _bill(charge, invoice)
            charge.order_id = _order_id(sub, charge)
            charge.save()
        _emit(adapter, sub, "subscription.updated", _subscription_data(sub), at=now)
    if charge is not None:  # committed first: then the provider is asked for the money
        _settle(sub.pk, now=now)
    return "now"


def subscription_method_update(
    *, subscription_id: str, method: str, card_company: str = "", card_number: str = ""
) -> str:
    """The customer saved another payment method. A past-due subscription is charged again at once
    with it (its open invoice, a new attempt). Returns "updated", or the retry's outcome: "paid"
    or "failed" ("unavailable" when the provider did not answer: the beat retries later)."""
    with transaction.atomic():
        sub = _locked(subscription_id)
        now = engine_now(sub.provider)
        sub.billing_key = method
        sub.card_company, sub.card_number = card_company[:32], card_number[:32]
        past_due = sub.status == EngineStatus.PAST_DUE
        if past_due:
            sub.next_retry_at = now  # due now: the retry below takes it
        sub.save()
    if not past_due:
        return "updated"
    if _claim(subscription_id, now=now) != "charge":
        return "updated"
    outcome, _ = _settle(subscription_id, now=now)
    return {"done": "paid"}.get(outcome, outcome)


def charge_owner(*, order_id: str, payment_key: str) -> dict | None:
    """Whose charge a provider's payment is (Toss's webhooks name the orderId and paymentKey), or
    None if it is not ours."""
    charge = (
        EngineCharge.objects.select_related("subscription")
        .filter(Q(order_id=order_id) | Q(payment_key=payment_key))
        .exclude(order_id="")
        .first()
    )
    if charge is None:
        return None
    return {"customer": charge.subscription.customer, "subscription_id": charge.subscription_id,
            "invoice": _invoice_ref(charge)}  # fmt: skip
