"""The sandbox provider's own behaviour: hosted checkout, charges, renewals, dunning, its clock.

It plays the part of an outside provider: it keeps its own records (SandboxCheckout,
SandboxSubscription), and tells the portal what happened only through signed webhooks that go
through the same verification, inbox and processing as Stripe's or Polar's would (delivered
in-process to the inbox once the sandbox's own writes commit).

Each charge collects an invoice (billing/invoicing/close.py): the first period's fee at checkout,
at each renewal the ended period's usage and the next period's fee, a proration on an upgrade; its
payment event names the invoice (`invoice: minv_<id>`), which pays it.

Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined; 4000 0000 0000 0341 pays now
and fails at every renewal. A failed renewal makes the subscription `past_due` and is retried
SANDBOX_RETRY_DAYS after the first failure (default +2, +5, +7 days); when the last retry fails
the subscription is canceled. `sandbox_advance` moves the sandbox clock and plays everything due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from billing.invoicing.close import BilledSubscription, first_invoice, period_close, proration_invoice
from billing.invoicing.models import Invoice
from billing.invoicing.services import engine_invoice_ref
from billing.providers.base import CheckoutRequest, CheckoutSession, ProviderError, RefundResult, UsageReport
from billing.providers.models import ProviderAccount, SandboxCheckout, SandboxClock, SandboxSubscription
from billing.providers.sandbox import SandboxProvider

CARDS = {"4242424242424242": "ok", "4000000000000341": "fails_at_renewal", "4000000000000002": "declined"}
RETRY_DAYS = (2, 5, 7)


class CardDeclined(ProviderError):
    code = "card_declined"
    status_code = 402


class UnknownCard(ProviderError):
    code = "unknown_test_card"
    status_code = 400


def sandbox_now() -> dt.datetime:
    clock = SandboxClock.objects.first()
    return timezone.now() + dt.timedelta(seconds=clock.offset_seconds if clock else 0)


def _emit(event_type: str, data: dict, *, at: dt.datetime) -> None:
    """Sign and deliver one event to this tenant's webhook inbox once the sandbox's writes commit."""
    from billing.inbox.services import inbox_receive  # the "HTTP call" to the portal

    account = ProviderAccount.objects.filter(provider="sandbox").order_by("mode").first()
    if account is None:
        raise ProviderError(
            "The sandbox provider is not configured for this tenant.", code="provider_not_configured"
        )
    payload = {
        "id": "evt_" + secrets.token_hex(12),
        "type": event_type,
        "created_at": at.isoformat(),
        "data": data,
    }
    body, headers = SandboxProvider(webhook_secret=account.webhook_secret).sign(payload=payload)
    transaction.on_commit(lambda: inbox_receive(provider="sandbox", body=body, headers=headers))


def _subscription_data(sub: SandboxSubscription, **extra) -> dict:
    return {
        "subscription_id": sub.id,
        "status": sub.status,
        "customer": sub.customer,
        "price": sub.price,
        "quantity": sub.quantity,
        "period_start": sub.period_start.isoformat(),
        "period_end": sub.period_end.isoformat(),
        "cancel_at_period_end": sub.cancel_at_period_end,
        **extra,
    }


def _step(interval: str) -> relativedelta:
    return relativedelta(years=1) if interval == "year" else relativedelta(months=1)


def checkout_create(request: CheckoutRequest) -> CheckoutSession:
    SandboxCheckout.objects.update_or_create(
        id=request.checkout_id,
        defaults={
            "customer": request.customer,
            "email": request.email,
            "price": request.price_ref,
            "interval": request.interval,
            "unit_amount": request.unit_amount,
            "currency": request.currency,
            "quantity": request.quantity,
            "trial_days": request.trial_days,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        },
    )
    return CheckoutSession(
        provider_checkout_id=request.checkout_id, url=f"/sandbox/checkout/{request.checkout_id}/"
    )


def checkout_pay(*, checkout_id: str, card_number: str) -> SandboxCheckout:
    """Pay a hosted checkout with a test card. Paying twice is a no-op."""
    card = CARDS.get("".join(ch for ch in card_number if ch.isdigit()))
    if card is None:
        raise UnknownCard("Use a test card: 4242 4242 4242 4242, 4000 0000 0000 0002 or 4000 0000 0000 0341.")
    with transaction.atomic():
        checkout = SandboxCheckout.objects.select_for_update().get(pk=checkout_id)
        if checkout.paid_at is not None:
            return checkout
        if card == "declined":
            raise CardDeclined("Your card was declined.")
        now = sandbox_now()
        trial_end = now + dt.timedelta(days=checkout.trial_days) if checkout.trial_days else None
        sub = SandboxSubscription.objects.create(
            id="sub_" + secrets.token_hex(10),
            customer=checkout.customer,
            price=checkout.price,
            interval=checkout.interval,
            unit_amount=checkout.unit_amount,
            currency=checkout.currency,
            quantity=checkout.quantity,
            card=card,
            status="trialing" if trial_end else "active",
            period_start=now,
            period_end=trial_end or now + _step(checkout.interval),
            trial_end=trial_end,
        )
        checkout.paid_at, checkout.subscription = now, sub
        checkout.save(update_fields=["paid_at", "subscription"])
        _emit("subscription.created", _subscription_data(sub, checkout_id=checkout.id), at=now)
        if not trial_end:
            invoice = first_invoice(
                sub=_sub(sub),
                period_start=sub.period_start,
                period_end=sub.period_end,
                checkout_id=str(checkout.id),
            )
            _charge(sub, at=now, succeeded=True, invoice=invoice)
    return checkout


def _sub(sub: SandboxSubscription) -> BilledSubscription:
    return BilledSubscription(
        provider="sandbox", subscription_id=sub.id, customer=sub.customer, price_code=sub.price,
        quantity=sub.quantity,
    )  # fmt: skip


def _charge(sub: SandboxSubscription, *, at: dt.datetime, succeeded: bool, invoice: Invoice) -> None:
    """Collect what the invoice says is due with the subscription's card (nothing when nothing is)."""
    if invoice.amount_due <= 0:
        return
    _emit(
        "payment.succeeded" if succeeded else "payment.failed",
        {"payment_id": "pay_" + secrets.token_hex(10), "amount": invoice.amount_due, "currency": invoice.currency,
         "customer": sub.customer, "subscription_id": sub.id, "invoice": engine_invoice_ref(invoice)},
        at=at,
    )  # fmt: skip


def _close(sub: SandboxSubscription, *, renews: bool, ended_price: str = "") -> Invoice:
    """The invoice of the period that ends now (a trial bills no usage)."""
    return period_close(
        sub=_sub(sub), period_start=sub.period_start, period_end=sub.period_end, renews=renews,
        bill_usage=sub.trial_end is None or sub.period_end > sub.trial_end, ended_price_code=ended_price,
    )  # fmt: skip


def _renew(sub: SandboxSubscription, at: dt.datetime) -> None:
    """The period (or trial) ended at `at`: cancel, charge and roll over, or start dunning."""
    if sub.cancel_at_period_end:  # the last invoice: the ended period's usage, no fee
        _charge(sub, at=at, succeeded=sub.card == "ok", invoice=_close(sub, renews=False))
        sub.status = "canceled"
        sub.save(update_fields=["status"])
        _emit("subscription.canceled", _subscription_data(sub), at=at)
        return
    ended_price = sub.price
    if sub.pending_price:  # a downgrade scheduled for this renewal takes over now
        sub.price, sub.unit_amount, sub.interval = (
            sub.pending_price,
            sub.pending_unit_amount,
            sub.pending_interval,
        )
        sub.pending_price, sub.pending_unit_amount, sub.pending_interval = "", None, ""
        sub.save(
            update_fields=[
                "price",
                "unit_amount",
                "interval",
                "pending_price",
                "pending_unit_amount",
                "pending_interval",
            ]
        )
    invoice = _close(sub, renews=True, ended_price=ended_price)
    if sub.card == "ok":
        sub.status, sub.period_start, sub.period_end = "active", at, at + _step(sub.interval)
        sub.save(update_fields=["status", "period_start", "period_end"])
        _charge(sub, at=at, succeeded=True, invoice=invoice)
        _emit("subscription.updated", _subscription_data(sub), at=at)
        return
    sub.status, sub.failed_attempts = "past_due", 1
    sub.next_retry_at = at + dt.timedelta(days=RETRY_DAYS[0])
    sub.save(update_fields=["status", "failed_attempts", "next_retry_at"])
    _charge(sub, at=at, succeeded=False, invoice=invoice)
    _emit("subscription.updated", _subscription_data(sub), at=at)


def _retry(sub: SandboxSubscription, at: dt.datetime) -> None:
    """A dunning retry on a card that keeps failing (the only sandbox card that fails renewals): the
    same invoice (its period did not move) is charged again."""
    _charge(sub, at=at, succeeded=False, invoice=_close(sub, renews=True))
    if sub.failed_attempts >= len(RETRY_DAYS):
        sub.status, sub.next_retry_at = "canceled", None
        sub.save(update_fields=["status", "next_retry_at"])
        _emit("subscription.canceled", _subscription_data(sub), at=at)
        return
    first_failure = sub.next_retry_at - dt.timedelta(days=RETRY_DAYS[sub.failed_attempts - 1])
    sub.failed_attempts += 1
    sub.next_retry_at = first_failure + dt.timedelta(days=RETRY_DAYS[sub.failed_attempts - 1])
    sub.save(update_fields=["failed_attempts", "next_retry_at"])


def _next_due(until: dt.datetime) -> tuple[dt.datetime, SandboxSubscription, Callable] | None:
    due = []
    for sub in SandboxSubscription.objects.filter(status__in=["trialing", "active"], period_end__lte=until):
        due.append((sub.period_end, sub, _renew))
    for sub in SandboxSubscription.objects.filter(status="past_due", next_retry_at__lte=until):
        due.append((sub.next_retry_at, sub, _retry))
    return min(due, key=lambda item: (item[0], item[1].id)) if due else None


def clock_advance(*, days: float, progress: Callable[[str], None] | None = None) -> int:
    """Move the sandbox clock and play everything that falls due, in time order. Returns the
    number of renewals and retries played."""
    played = 0
    with transaction.atomic():
        clock = SandboxClock.objects.select_for_update().first() or SandboxClock.objects.create()
        clock.offset_seconds += int(days * 86400)
        clock.save(update_fields=["offset_seconds"])
        until = timezone.now() + dt.timedelta(seconds=clock.offset_seconds)
        while (item := _next_due(until)) is not None:
            at, sub, play = item
            play(sub, at)
            played += 1
            if progress:
                progress(f"{at:%Y-%m-%d} {sub.id} {play.__name__.strip('_')} → {sub.status}")
        from billing.memberships.signals import clock_changed

        clock_changed.send(sender=SandboxClock)
        transaction.on_commit(lambda: clock_changed.send(sender=SandboxClock))
    return played


def subscription_cancel(*, subscription_id: str, at_period_end: bool) -> None:
    with transaction.atomic():
        sub = SandboxSubscription.objects.select_for_update().get(pk=subscription_id)
        now = sandbox_now()
        if at_period_end:
            sub.cancel_at_period_end = True
            sub.save(update_fields=["cancel_at_period_end"])
            _emit("subscription.updated", _subscription_data(sub), at=now)
        else:
            sub.status = "canceled"
            sub.save(update_fields=["status"])
            _emit("subscription.canceled", _subscription_data(sub), at=now)


def subscription_change(
    *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
) -> str:
    """Upgrade now with a prorated charge, or downgrade at the end of the period (like Stripe's
    `proration_behavior=always_invoice` and a subscription schedule). Returns "now" or "at_period_end".

    Proration is exact integer arithmetic: (new total - old total) × remaining seconds ÷ period
    seconds, rounded down (in the customer's favour)."""
    with transaction.atomic():
        sub = SandboxSubscription.objects.select_for_update().get(pk=subscription_id)
        if sub.status in ("canceled", "expired"):
            raise ProviderError("The subscription has ended.", code="subscription_ended")
        now = sandbox_now()
        old_total, new_total = sub.unit_amount * sub.quantity, unit_amount * quantity
        old_price, old_quantity = sub.price, sub.quantity
        if new_total >= old_total or sub.status == "trialing":
            remaining = max(0, int((sub.period_end - now).total_seconds()))
            period = max(1, int((sub.period_end - sub.period_start).total_seconds()))
            prorated = (new_total - old_total) * remaining // period if sub.status != "trialing" else 0
            sub.price, sub.unit_amount, sub.interval, sub.quantity = (
                price_ref,
                unit_amount,
                interval,
                quantity,
            )
            sub.pending_price, sub.pending_unit_amount, sub.pending_interval = "", None, ""
            sub.save()
            if prorated > 0:
                invoice = proration_invoice(
                    sub=_sub(sub), old_price_code=old_price, old_quantity=old_quantity, amount=prorated,
                    at=now, period_end=sub.period_end,
                )  # fmt: skip
                _charge(sub, at=now, succeeded=True, invoice=invoice)
            _emit("subscription.updated", _subscription_data(sub), at=now)
            return "now"
        sub.pending_price, sub.pending_unit_amount, sub.pending_interval = price_ref, unit_amount, interval
        sub.save(update_fields=["pending_price", "pending_unit_amount", "pending_interval"])
        return "at_period_end"


def subscription_pause(*, subscription_id: str, paused: bool) -> None:
    with transaction.atomic():
        sub = SandboxSubscription.objects.select_for_update().get(pk=subscription_id)
        if paused and sub.status in ("active", "trialing", "past_due"):
            sub.status = "paused"
        elif not paused and sub.status == "paused":
            sub.status = "active"
        else:
            raise ProviderError(
                f"A {sub.status} subscription cannot be {'paused' if paused else 'resumed'}.",
                code="invalid_transition",
            )
        sub.save(update_fields=["status"])
        _emit("subscription.updated", _subscription_data(sub), at=sandbox_now())


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
    """The sandbox's refund API: a `refund.created` event naming the charge (`reference`). The
    sandbox keeps no refund rows: the refund's id and its event's id derive from the idempotency key,
    so the same key again is the same refund (the inbox stores its event once)."""
    if not payment_id or amount <= 0:
        raise ProviderError("A sandbox refund names a charge and a positive amount.", code="invalid_refund")
    digest = hashlib.sha256(f"{idempotency_key}\0{payment_id}".encode()).hexdigest()
    refund_id = "re_" + digest[:24]
    data = {"payment_id": refund_id, "amount": amount, "currency": currency.lower(), "customer": "",
            "reference": payment_id}  # fmt: skip
    from billing.inbox.services import inbox_receive

    account = ProviderAccount.objects.filter(provider="sandbox").order_by("mode").first()
    if account is None:
        raise ProviderError(
            "The sandbox provider is not configured for this tenant.", code="provider_not_configured"
        )
    payload = {"id": "evt_" + digest[24:48], "type": "refund.created", "created_at": sandbox_now().isoformat(),
               "data": data}  # fmt: skip
    body, headers = SandboxProvider(webhook_secret=account.webhook_secret).sign(payload=payload)
    transaction.on_commit(lambda: inbox_receive(provider="sandbox", body=body, headers=headers))
    return RefundResult(refund_id=refund_id, amount=amount)
