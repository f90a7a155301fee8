"""The sandbox on our engine: its hosted checkout page with test cards, its clock, refunds and
usage reports. The subscriptions themselves are the engine's (engine/core.py), as Toss's and
Stripe's engine-mode ones are; the sandbox adapter is the card network (charge_saved_method).

Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined at the checkout;
4000 0000 0000 0341 pays at the checkout and is declined at every renewal (the engine's dunning
then retries +2, +5, +7 days and cancels). The sandbox's subscriptions run on its own clock:
`clock_advance` (the `sandbox_advance` command) moves it and plays everything that falls due, in
time order; the hourly beat leaves them alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.db import transaction
from django.db.models import Min, Q

from billing.invoicing.engine.changes import (
    subscription_cancel,
    subscription_change,
    subscription_method_update,
    subscription_pause,
    subscription_uncancel,
)
from billing.invoicing.engine.charging import charges_due_run
from billing.invoicing.engine.core import (
    EngineCheckoutNotFound,
    _adapter,
    _sandbox_fee,
    deliver_on_commit,
    engine_now,
)
from billing.invoicing.engine.start import subscription_first_charge, subscription_start
from billing.providers.base import (
    BalanceEntry,
    CheckoutRequest,
    CheckoutSession,
    ProviderError,
    RefundResult,
    UsageReport,
)
from billing.providers.models import (
    EngineCharge,
    EngineChargeStatus,
    EngineCheckout,
    EngineStatus,
    EngineSubscription,
    ProviderAccount,
    SandboxClock,
    SandboxRefund,
)

__all__ = [
    "checkout_create", "checkout_pay", "clock_advance", "payment_method_subscription", "payment_method_update",
    "refund_create", "sandbox_now", "subscription_cancel", "subscription_change", "subscription_pause", "subscription_uncancel", "usage_report",
    "balance_transactions",
]  # fmt: skip

CARDS = {"4242424242424242": "ok", "4000000000000341": "fails_at_renewal", "4000000000000002": "declined"}


class CardDeclined(ProviderError):
    code = "card_declined"
    status_code = 402


class UnknownCard(ProviderError):
    code = "unknown_test_card"
    status_code = 400


def sandbox_now() -> dt.datetime:
    return engine_now("sandbox")


def checkout_create(request: CheckoutRequest, *, mode: str = "test") -> CheckoutSession:
    EngineCheckout.objects.update_or_create(
        id=request.checkout_id,
        defaults={
            "provider": "sandbox", "mode": mode, "customer": request.customer, "customer_key": "",
            "email": request.email, "price": request.price_ref, "interval": request.interval,
            "unit_amount": request.unit_amount, "currency": request.currency.lower(), "quantity": request.quantity,
            "trial_days": request.trial_days, "success_url": request.success_url, "cancel_url": request.cancel_url,
        },
    )  # fmt: skip
    return CheckoutSession(
        provider_checkout_id=request.checkout_id, url=f"/sandbox/checkout/{request.checkout_id}/"
    )


def checkout_pay(*, checkout_id: str, card_number: str) -> EngineCheckout:
    """Pay a hosted checkout with a test card: the card is saved, the subscription starts and its
    first invoice is charged (a trial charges nothing yet). Paying twice is a no-op."""
    digits = "".join(ch for ch in card_number if ch.isdigit())
    card = CARDS.get(digits)
    if card is None:
        raise UnknownCard("Use a test card: 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0000 0000 0341.")
    now = sandbox_now()
    with transaction.atomic():
        checkout = (
            EngineCheckout.objects.select_for_update().filter(pk=checkout_id, provider="sandbox").first()
        )
        if checkout is None:
            raise EngineCheckoutNotFound("No such sandbox checkout.")
        if checkout.completed_at is not None:
            return checkout
        if card == "declined":  # refused before anything is saved, like a card network would
            raise CardDeclined("Your card was declined.")
        if checkout.interval == "one_time":
            _pay_once(checkout, card=card, now=now)
            return checkout
        subscription_start(
            checkout, method=card, card_company="Sandbox", card_number=f"•••• {digits[-4:]}",
            digest=hashlib.sha256(digits.encode()).hexdigest(), now=now,
        )  # fmt: skip
    subscription_first_charge(checkout, now=now, declined=CardDeclined)
    return checkout


def _pay_once(checkout: EngineCheckout, *, card: str, now: dt.datetime) -> None:
    """A one-time payment (a tip, a one-time price): the card is charged once under a key from the
    checkout's id, and the sandbox reports the paid order (`order.paid`, naming the checkout) as a
    signed event whose id derives from the checkout too (a redelivery is the same event)."""
    adapter = _adapter("sandbox", checkout.mode)
    amount = checkout.unit_amount * checkout.quantity
    result = adapter.charge_saved_method(
        method=card, customer_key=checkout.customer_key, amount=amount, currency=checkout.currency,
        key=f"checkout-{checkout.pk}", description=checkout.price, email=checkout.email,
        metadata={"monetize_at_checkout": True},
    )  # fmt: skip
    if not result.succeeded:
        raise CardDeclined(result.failure_message or "Your card was declined.")
    checkout.completed_at, checkout.payment_key, checkout.fee_amount = (
        now,
        result.payment_id,
        _sandbox_fee(amount),
    )
    checkout.save(update_fields=["completed_at", "payment_key", "fee_amount"])
    digest = hashlib.sha256(f"order.paid\0{checkout.pk}".encode()).hexdigest()
    payload = {
        "id": "evt_" + digest[:24], "type": "order.paid", "created_at": now.isoformat(),
        "data": {"payment_id": result.payment_id, "amount": amount, "currency": checkout.currency,
                 "customer": checkout.customer, "checkout_id": checkout.pk, "fee": checkout.fee_amount},
    }  # fmt: skip
    body, headers = adapter.sign(payload=payload)
    deliver_on_commit("sandbox", body, headers)


def payment_method_subscription(*, customer: str, prefer: str = "") -> EngineSubscription | None:
    """The customer's live sandbox subscription whose saved card the portal shows: `prefer` (the
    plan's subscription id) when it is live, else a past-due one, else the newest."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        EngineSubscription.objects.filter(provider="sandbox", customer=customer)
        .exclude(status__in=[EngineStatus.CANCELED, EngineStatus.INCOMPLETE])
        .order_by(
            Case(
                When(pk=prefer or None, then=Value(0)),
                When(status=EngineStatus.PAST_DUE, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
            "-created_at",
        )
        .first()
    )


def payment_method_update(*, subscription_id: str, card_number: str) -> str:
    """The sandbox's "update your card" (its customer portal): a test card replaces the saved one;
    a past-due subscription is charged again at once. Returns the engine's outcome."""
    digits = "".join(ch for ch in card_number if ch.isdigit())
    card = CARDS.get(digits)
    if card is None:
        raise UnknownCard("Use a test card: 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0000 0000 0341.")
    if card == "declined":
        raise CardDeclined("Your card was declined.")
    return subscription_method_update(
        subscription_id=subscription_id,
        method=card,
        card_company="Sandbox",
        card_number=f"•••• {digits[-4:]}",
    )


def _next_due(until: dt.datetime) -> dt.datetime | None:
    due = EngineSubscription.objects.filter(provider="sandbox").aggregate(
        renewal=Min("period_end", filter=Q(status__in=[EngineStatus.ACTIVE, EngineStatus.TRIALING])),
        retry=Min("next_retry_at", filter=Q(status=EngineStatus.PAST_DUE)),
    )
    times = [t for t in (due["renewal"], due["retry"]) if t is not None and t <= until]
    return min(times) if times else None


def clock_advance(*, days: float, progress: Callable[[str], None] | None = None) -> int:
    """Move the sandbox clock and play everything that falls due, in time order (each renewal,
    trial end and retry at its own time). Returns the number of renewals and retries played."""
    played = 0
    with transaction.atomic():
        clock = SandboxClock.objects.select_for_update().first() or SandboxClock.objects.create()
        clock.offset_seconds += int(days * 86400)
        clock.save(update_fields=["offset_seconds"])
        until = sandbox_now()
        while (at := _next_due(until)) is not None:
            played += charges_due_run(now=at, sandbox=True, progress=progress)
        from billing.memberships.signals import clock_changed

        clock_changed.send(sender=SandboxClock)
        transaction.on_commit(lambda: clock_changed.send(sender=SandboxClock))
    return played


def usage_report(report: UsageReport) -> str:
    """The sandbox's meter-event API: records the report once per identifier, like a provider would."""
    from billing.metering.sync_models import SandboxUsageReport

    row = SandboxUsageReport(
        identifier=report.report_id, customer=report.customer, meter=report.meter, quantity=report.quantity,
        period_start=report.period_start, period_end=report.period_end,
    )  # fmt: skip
    SandboxUsageReport.objects.bulk_create([row], ignore_conflicts=True)  # a resent identifier: kept once
    return f"sandbox_usage_{report.report_id}"


def refund_create(*, payment_id: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
    """The sandbox's refund API: a `refund.created` event naming the charge (`reference`), and a
    SandboxRefund row, the sandbox's own record of it (reconciliation reads it). The refund's id and its event's id derive from the idempotency key,
    so the same key again is the same refund (the inbox stores its event once)."""
    from billing.providers.sandbox import SandboxProvider

    if not payment_id or amount <= 0:
        raise ProviderError("A sandbox refund names a charge and a positive amount.", code="invalid_refund")
    digest = hashlib.sha256(f"{idempotency_key}\0{payment_id}".encode()).hexdigest()
    refund_id = "re_" + digest[:24]
    data = {"payment_id": refund_id, "amount": amount, "currency": currency.lower(), "customer": "",
            "reference": payment_id}  # fmt: skip
    account = ProviderAccount.objects.filter(provider="sandbox").order_by("mode").first()
    if account is None:
        raise ProviderError(
            "The sandbox provider is not configured for this tenant.", code="provider_not_configured"
        )
    now = sandbox_now()
    # the sandbox's own books (reconciliation reads them): once per refund id
    SandboxRefund.objects.bulk_create(
        [SandboxRefund(refund_id=refund_id, payment_id=payment_id, amount=amount, currency=currency.lower(),
                       created_at=now)],
        ignore_conflicts=True,
    )  # fmt: skip
    payload = {"id": "evt_" + digest[24:48], "type": "refund.created", "created_at": now.isoformat(),
               "data": data}  # fmt: skip
    body, headers = SandboxProvider(webhook_secret=account.webhook_secret).sign(payload=payload)
    deliver_on_commit("sandbox", body, headers)
    return RefundResult(refund_id=refund_id, amount=amount)


def balance_transactions(*, since: dt.datetime, until: dt.datetime) -> list[BalanceEntry]:
    """The sandbox's own books over [since, until) on its clock, as a provider's balance
    transactions: each paid charge (with the fee it kept; one-time payments too) and each refund
    (negative)."""
    charges = (
        EngineCharge.objects.filter(subscription__provider="sandbox", status=EngineChargeStatus.DONE, amount__gt=0)
        .filter(Q(paid_at__gte=since, paid_at__lt=until) | Q(paid_at__isnull=True, updated_at__gte=since, updated_at__lt=until))
        .select_related("subscription")
        .order_by("id")
    )  # fmt: skip
    entries = [
        BalanceEntry(
            entry_id=f"sbt_ch_{charge.pk}",
            type="charge",
            source=charge.payment_key,
            amount=charge.amount,
            fee=charge.fee_amount,
            currency=charge.currency.lower(),
            created=charge.paid_at or charge.updated_at,
        )  # fmt: skip
        for charge in charges
    ]
    one_time = EngineCheckout.objects.filter(
        provider="sandbox", interval="one_time", completed_at__gte=since, completed_at__lt=until
    ).exclude(payment_key="")
    entries += [
        BalanceEntry(
            entry_id=f"sbt_co_{checkout.pk}",
            type="charge",
            source=checkout.payment_key,
            amount=checkout.unit_amount * checkout.quantity,
            fee=checkout.fee_amount,
            currency=checkout.currency.lower(),
            created=checkout.completed_at,
        )  # a one-time payment (a tip)
        for checkout in one_time.order_by("completed_at", "id")
    ]
    refunds = SandboxRefund.objects.filter(created_at__gte=since, created_at__lt=until).order_by("id")
    entries += [
        BalanceEntry(
            entry_id=f"sbt_re_{refund.pk}",
            type="refund",
            source=refund.refund_id,
            amount=-refund.amount,
            fee=0,
            currency=refund.currency,
            created=refund.created_at,
        )  # fmt: skip
        for refund in refunds
    ]
    return entries
