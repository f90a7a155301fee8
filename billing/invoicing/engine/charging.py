"""Collecting the engine's charges (billing.invoicing.engine.core describes the engine): one
EngineCharge per (subscription, period) claimed, then settled at the provider under its idempotency
key; a refusal walks the dunning (RETRY_DAYS), a provider that does not answer counts no attempt;
`charges_due_run` is the hourly job over every tenant."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.invoicing.close import period_close
from billing.invoicing.engine.core import (
    DUE_BATCH,
    RETRY_DAYS,
    _adapter,
    _bill,
    _emit,
    _esub,
    _invoice_ref,
    _order_id,
    _payment_data,
    _sandbox_fee,
    _step,
    _subscription_data,
)
from billing.invoicing.models import Invoice, InvoiceStatus
from billing.invoicing.services import invoice_void
from billing.providers.base import (
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
)
from billing.providers.models import (
    EngineCharge,
    EngineChargeKind,
    EngineChargeStatus,
    EngineCheckout,
    EngineStatus,
    EngineSubscription,
)

logger = logging.getLogger(__name__)


def _settle(sub_id: str, *, now: dt.datetime, at_checkout: bool = False) -> tuple[str, ProviderError | None]:
    """Ask the provider for the subscription's pending charge and apply the answer (`at_checkout`:
    the customer is paying right now, which a sandbox test card tells apart from a renewal).
    Returns (outcome, error): done | failed | unavailable | skipped."""
    with transaction.atomic():
        sub = EngineSubscription.objects.select_for_update(skip_locked=True).filter(pk=sub_id).first()
        if sub is None:
            return "skipped", None  # another worker has it
        charge = (
            EngineCharge.objects.select_for_update()
            .filter(subscription=sub, status=EngineChargeStatus.PENDING)
            .order_by("period")
            .first()
        )
        if charge is None:
            return "skipped", None
        adapter = _adapter(sub.provider, sub.mode)
        if charge.amount <= 0:  # nothing due (a 100% discount, no usage): no call to the provider
            _paid(adapter, sub, charge, payment_id="", amount=0, at=now)
            return "done", None
        try:
            result = adapter.charge_saved_method(
                method=sub.billing_key, customer_key=sub.customer_key, amount=charge.amount,
                currency=charge.currency, key=charge.order_id, description=f"{sub.price} #{charge.period}",
                email=sub.email,
                metadata={"monetize_invoice": _invoice_ref(charge), "monetize_customer": sub.customer,
                          "monetize_subscription": sub.id, "monetize_at_checkout": "1" if at_checkout else ""},
            )  # fmt: skip
        except (ProviderUnavailable, ProviderNotConfigured) as exc:
            # no attempt counted: the row keeps its idempotency key for the next try
            logger.warning("%s charge %s not attempted: %s", sub.provider, charge.order_id, exc.code)
            return "unavailable", exc
        if not result.succeeded:
            _failed(adapter, sub, charge, code=result.failure_code, message=result.failure_message, at=now)
            return "failed", None
        _paid(
            adapter, sub, charge, payment_id=result.payment_id, amount=result.amount or charge.amount, at=now
        )
        return "done", None


def _paid(
    adapter, sub: EngineSubscription, charge: EngineCharge, *, payment_id: str, amount: int, at: dt.datetime
) -> None:
    charge.status, charge.payment_key = EngineChargeStatus.DONE, payment_id
    charge.failure_code, charge.failure_message = "", ""
    charge.fee_amount = _sandbox_fee(amount) if sub.provider == "sandbox" else 0
    charge.paid_at = at
    charge.save(
        update_fields=[
            "status", "payment_key", "fee_amount", "paid_at", "failure_code", "failure_message", "updated_at",
        ]
    )  # fmt: skip
    paid = _payment_data(sub, charge, payment_id=charge.payment_key, amount=amount)
    if charge.fee_amount:
        paid["fee"] = charge.fee_amount
    if charge.kind == EngineChargeKind.PRORATION:  # an upgrade's difference: the period does not move
        if amount:
            _emit(adapter, sub, "payment.succeeded", paid, at=at)
        return
    if charge.final:  # the last invoice (the usage of the period the subscription ends with)
        sub.status, sub.period_number = EngineStatus.CANCELED, charge.period
        sub.save()
        if amount:
            _emit(adapter, sub, "payment.succeeded", paid, at=at)
        _emit(adapter, sub, "subscription.canceled", _subscription_data(sub), at=at)
        return
    first = sub.status == EngineStatus.INCOMPLETE
    start = at if first else sub.period_end
    if start + _step(sub.interval) <= at:  # the job was down for longer than a period: re-anchor, no catch-up
        start = at
    sub.status, sub.period_number = EngineStatus.ACTIVE, charge.period
    sub.period_start, sub.period_end = start, start + _step(sub.interval)
    sub.failed_attempts, sub.first_failed_at, sub.next_retry_at = 0, None, None
    sub.save()
    if first:
        checkout = EngineCheckout.objects.filter(subscription=sub).first()
        if checkout is not None:
            checkout.completed_at = at
            checkout.save(update_fields=["completed_at"])
        extra = {"checkout_id": checkout.pk} if checkout else {}
        _emit(adapter, sub, "subscription.created", _subscription_data(sub, **extra), at=at)
        if amount:
            _emit(adapter, sub, "payment.succeeded", paid, at=at)
    else:
        if amount:
            _emit(adapter, sub, "payment.succeeded", paid, at=at)
        _emit(adapter, sub, "subscription.updated", _subscription_data(sub), at=at)


def _failed(
    adapter,
    sub: EngineSubscription,
    charge: EngineCharge,
    *,
    code: str,
    message: str,
    at: dt.datetime,
) -> None:
    charge.status, charge.failure_code, charge.failure_message = (
        EngineChargeStatus.FAILED,
        code[:64],
        message[:500],
    )
    charge.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
    if sub.status == EngineStatus.INCOMPLETE:  # the checkout's first charge: no membership, the page says why
        EngineCheckout.objects.filter(subscription=sub).update(
            error_code=code[:64], error_message=message[:500]
        )
        _void_unpaid(charge)  # another card is a new attempt with its own invoice
        return
    failed = _payment_data(sub, charge, payment_id=charge.order_id, amount=charge.amount)
    _emit(adapter, sub, "payment.failed", failed, at=at)
    if charge.kind == EngineChargeKind.PRORATION:  # the upgrade stands; its invoice stays open for staff
        return
    if charge.final:  # the subscription ends anyway; its last invoice stays open for staff
        sub.status, sub.next_retry_at, sub.period_number = EngineStatus.CANCELED, None, charge.period
        sub.save()
        _emit(adapter, sub, "subscription.canceled", _subscription_data(sub), at=at)
        return
    if sub.status != EngineStatus.PAST_DUE:
        sub.status, sub.failed_attempts, sub.first_failed_at = EngineStatus.PAST_DUE, 1, at
        sub.next_retry_at = at + dt.timedelta(days=RETRY_DAYS[0])
        sub.save()
        _emit(adapter, sub, "subscription.updated", _subscription_data(sub), at=at)
        return
    sub.failed_attempts += 1
    if sub.failed_attempts > len(RETRY_DAYS):
        sub.status, sub.next_retry_at = EngineStatus.CANCELED, None
        sub.save()
        charge.status = EngineChargeStatus.VOID
        charge.save(update_fields=["status", "updated_at"])
        _emit(adapter, sub, "subscription.canceled", _subscription_data(sub), at=at)
        return
    sub.next_retry_at = (sub.first_failed_at or at) + dt.timedelta(days=RETRY_DAYS[sub.failed_attempts - 1])
    sub.save()


def _void_unpaid(charge: EngineCharge) -> None:
    invoice = Invoice.objects.filter(pk=charge.invoice_id).first() if charge.invoice_id else None
    if invoice is not None and invoice.status == InvoiceStatus.OPEN and not invoice.amount_paid:
        invoice_void(invoice_id=invoice.pk)
    charge.invoice_id = None
    charge.save(update_fields=["invoice_id", "updated_at"])


def _claim(sub_id: str, *, now: dt.datetime) -> str:
    """Lock a due subscription (skipping one another worker holds) and make sure the row of the
    period to charge exists and is pending. Returns "charge", "canceled" or "skipped"."""
    with transaction.atomic():
        sub = EngineSubscription.objects.select_for_update(skip_locked=True).filter(pk=sub_id).first()
        if sub is None:
            return "skipped"
        renewing = sub.status in (EngineStatus.ACTIVE, EngineStatus.TRIALING) and sub.period_end <= now
        retrying = (
            sub.status == EngineStatus.PAST_DUE and sub.next_retry_at is not None and sub.next_retry_at <= now
        )
        if not (renewing or retrying):
            return "skipped"
        period = sub.period_number + 1
        charge = (
            EngineCharge.objects.select_for_update()
            .filter(subscription=sub, period=period, kind=EngineChargeKind.PERIOD)
            .first()
        )
        bill_usage = sub.status != EngineStatus.TRIALING
        if charge is None and renewing and sub.cancel_at_period_end:
            # the last invoice: the ended period's usage, no fee; nothing due ends it at once
            invoice = period_close(sub=_esub(sub), period_start=sub.period_start, period_end=sub.period_end,
                                   renews=False, bill_usage=bill_usage)  # fmt: skip
            if invoice.amount_due <= 0:
                sub.status = EngineStatus.CANCELED
                sub.save()
                _emit(
                    _adapter(sub.provider, sub.mode),
                    sub,
                    "subscription.canceled",
                    _subscription_data(sub),
                    at=sub.period_end,
                )
                return "canceled"
            charge = EngineCharge(subscription=sub, period=period, final=True)
            _bill(charge, invoice)
            charge.order_id = _order_id(sub, charge)
            charge.save()
            return "charge"
        if charge is None:
            ended_price = sub.price
            if sub.pending_price:  # a change scheduled for this renewal takes over now
                sub.price, sub.unit_amount = sub.pending_price, sub.pending_unit_amount
                sub.interval, sub.quantity = sub.pending_interval, sub.pending_quantity or sub.quantity
                sub.pending_price, sub.pending_unit_amount, sub.pending_interval = "", None, ""
                sub.pending_quantity = None
                sub.save()
            invoice = period_close(
                sub=_esub(sub), period_start=sub.period_start, period_end=sub.period_end, renews=True,
                bill_usage=bill_usage, ended_price_code=ended_price,
            )  # fmt: skip
            charge = EngineCharge(subscription=sub, period=period)
            _bill(charge, invoice)
            charge.order_id = _order_id(sub, charge)
            charge.save()
        elif charge.status == EngineChargeStatus.FAILED:  # a dunning retry: a new attempt, a new key
            charge.attempt += 1
            charge.order_id, charge.status = _order_id(sub, charge), EngineChargeStatus.PENDING
            charge.save(update_fields=["attempt", "order_id", "status", "updated_at"])
        elif charge.status != EngineChargeStatus.PENDING:
            return "skipped"
        return "charge"


def _due(now: dt.datetime) -> Q:
    return Q(status__in=[EngineStatus.ACTIVE, EngineStatus.TRIALING], period_end__lte=now) | Q(
        status=EngineStatus.PAST_DUE, next_retry_at__lte=now
    )


def charges_due_run(
    *, now: dt.datetime | None = None, sandbox: bool = False, progress: Callable[[str], None] | None = None
) -> int:
    """Close and charge every subscription whose period ended or whose dunning retry is due (beat,
    hourly, per tenant). Safe to run twice or concurrently. The sandbox's subscriptions run on the
    sandbox's clock instead (`sandbox=True`: those alone, played by its clock). Returns the number
    of subscriptions that were charged, refused or ended."""
    now = now or timezone.now()
    due = EngineSubscription.objects.filter(_due(now))
    due = due.filter(provider="sandbox") if sandbox else due.exclude(provider="sandbox")
    played = 0
    for sub_id, was in list(due.order_by("period_end", "id").values_list("pk", "status")[:DUE_BATCH]):
        try:
            claimed = _claim(sub_id, now=now)
            if claimed == "charge":
                claimed, _ = _settle(sub_id, now=now)
        except ProviderError as exc:  # one subscription's trouble does not stop the others
            logger.warning("subscription %s not charged: %s", sub_id, exc.code)
            continue
        played += claimed in ("done", "failed", "canceled")
        if progress is not None and claimed != "skipped":
            status = EngineSubscription.objects.filter(pk=sub_id).values_list("status", flat=True).first()
            progress(
                f"{now:%Y-%m-%d} {sub_id} {'retry' if was == EngineStatus.PAST_DUE else 'renew'} → {status}"
            )
    return played
