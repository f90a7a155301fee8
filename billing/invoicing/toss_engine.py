"""Our side of a TossPayments subscription: Toss keeps billing keys, we keep the schedule.

Like the sandbox engine, it tells the portal what happened only through signed events that go
through `/webhooks/toss/`'s verification, the inbox and the normal processing (delivered
in-process to the inbox once our writes commit; signed by TossProvider.sign).

- Checkout: our page opens Toss's billing-auth window; its successUrl brings `customerKey` and
  `authKey` back; we issue the billing key, create the schedule and charge the first period.
- Charges: one EngineCharge row per (subscription, period), committed before Toss is called.
  orderId = Idempotency-Key = `tsub-<sub id>-<period>` (a dunning retry adds `-<attempt>`), so a
  re-run or a crash replays Toss's first answer instead of charging twice.
- Renewals: `charges_due_run` (Celery beat, hourly per tenant) charges every period that has
  ended; a refusal makes the subscription past_due with retries RETRY_DAYS after the first
  failure (+2, +5, +7 days), then cancels it; Toss being unavailable counts no attempt.
- Cancel (at period end: no renewal; now: at once), pause (no charges while paused), change
  (the next period's price: "at_period_end", no proration).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.invoicing.close import BilledSubscription, first_invoice, period_close
from billing.invoicing.models import InvoiceStatus
from billing.invoicing.services import ENGINE_REF_PREFIX, invoice_void
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
)
from billing.providers.models import (
    EngineCharge,
    EngineChargeStatus,
    EngineCheckout,
    EngineStatus,
    EngineSubscription,
    ProviderAccount,
    TossCustomer,
)
from billing.providers.toss import TossCardDeclined, TossProvider, TossUnsupported, customer_key_generate

logger = logging.getLogger(__name__)
RETRY_DAYS = (2, 5, 7)
MIN_AMOUNT = 100  # Toss: card payments from 100 won (BELOW_MINIMUM_AMOUNT)
ALREADY_PAID_CODES = frozenset({"ALREADY_PROCESSED_PAYMENT", "DUPLICATED_ORDER_ID"})
DUE_BATCH = 500


class EngineCheckoutNotFound(ProviderError):
    code = "checkout_not_found"
    status_code = 404


class EngineCheckoutMismatch(ProviderError):
    code = "customer_key_mismatch"
    status_code = 400


class EngineSubscriptionInvalid(ProviderError):
    code = "invalid_transition"
    status_code = 409


def _adapter(mode: str) -> TossProvider:
    from billing.providers.registry import provider_for

    account = ProviderAccount.objects.filter(provider="toss", mode=mode).first()
    if account is None:
        raise ProviderNotConfigured(f"No TossPayments account ({mode}) is configured for this tenant.")
    return provider_for(account)


def _emit(adapter: TossProvider, event_type: str, data: dict, *, at: dt.datetime) -> None:
    """Sign and deliver one event to this tenant's webhook inbox once our writes commit."""
    from billing.inbox.services import inbox_receive  # the "HTTP call" to the portal

    payload = {
        "id": "tevt_" + secrets.token_hex(12),
        "type": event_type,
        "created_at": at.isoformat(),
        "data": data,
    }
    body, headers = adapter.sign(payload=payload)
    transaction.on_commit(lambda: inbox_receive(provider="toss", body=body, headers=headers))


def _subscription_data(sub: EngineSubscription, **extra) -> dict:
    return {
        "subscription_id": sub.id,
        "status": sub.status,
        "customer": sub.customer,
        "customer_key": sub.customer_key,
        "price": sub.price,
        "quantity": sub.quantity,
        "period_start": sub.period_start.isoformat(),
        "period_end": sub.period_end.isoformat(),
        "cancel_at_period_end": sub.cancel_at_period_end,
        **extra,
    }


def _payment_data(sub: EngineSubscription, charge: EngineCharge, *, payment_id: str, amount: int) -> dict:
    return {"payment_id": payment_id, "amount": amount, "currency": sub.currency, "customer": sub.customer,
            "subscription_id": sub.id, "invoice": _invoice_ref(charge)}  # fmt: skip


def _invoice_ref(charge: EngineCharge) -> str:
    return f"{ENGINE_REF_PREFIX}{charge.invoice_id}" if charge.invoice_id else ""


def _esub(sub: EngineSubscription) -> BilledSubscription:
    return BilledSubscription(
        provider="toss",
        subscription_id=sub.id,
        customer=sub.customer,
        price_code=sub.price,
        quantity=sub.quantity,
    )


def _bill(charge: EngineCharge, invoice) -> None:
    """The charge collects what the invoice says is due."""
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        raise ProviderError(
            f"Invoice {invoice} is {invoice.status}: nothing to collect.", code="invoice_not_open"
        )
    charge.amount, charge.invoice_id, charge.currency = invoice.amount_due, invoice.pk, invoice.currency


def _step(interval: str) -> relativedelta:
    return relativedelta(years=1) if interval == "year" else relativedelta(months=1)


def _order_id(sub_id: str, period: int, attempt: int) -> str:
    return f"tsub-{sub_id}-{period}" if attempt == 1 else f"tsub-{sub_id}-{period}-{attempt}"


def _validate_terms(*, currency: str, interval: str, amount: int) -> None:
    if currency.lower() != "krw":
        raise TossUnsupported(
            f"TossPayments charges in KRW only; this price is in {currency.upper()}.",
            details={"currency": currency},
        )
    if interval not in ("month", "year"):
        raise TossUnsupported(
            "TossPayments billing keys are used for monthly or yearly prices only.",
            code="interval_not_supported",
            details={"interval": interval},
        )
    if amount < MIN_AMOUNT:
        raise TossUnsupported(
            f"TossPayments card charges start at {MIN_AMOUNT} won.",
            code="amount_too_small",
            details={"amount": amount},
        )


# --- checkout ----------------------------------------------------------------------------------


def checkout_create(request: CheckoutRequest, *, mode: str) -> CheckoutSession:
    """Record the checkout our page hosts (KRW only) and the customer's random customerKey."""
    _validate_terms(
        currency=request.currency, interval=request.interval, amount=request.unit_amount * request.quantity
    )
    toss_customer, _ = TossCustomer.objects.get_or_create(
        customer=request.customer, defaults={"customer_key": customer_key_generate()}
    )
    EngineCheckout.objects.update_or_create(
        id=request.checkout_id,
        defaults={
            "mode": mode,
            "customer": request.customer,
            "customer_key": toss_customer.customer_key,
            "email": request.email,
            "price": request.price_ref,
            "interval": request.interval,
            "unit_amount": request.unit_amount,
            "currency": request.currency.lower(),
            "quantity": request.quantity,
            "trial_days": request.trial_days,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        },
    )
    return CheckoutSession(
        provider_checkout_id=request.checkout_id, url=f"/toss/checkout/{request.checkout_id}/"
    )


def checkout_complete(
    *, checkout_id: str, customer_key: str, auth_key: str, now: dt.datetime | None = None
) -> EngineCheckout:
    """Toss's successUrl: issue the billing key, start the schedule, charge the first period.

    Safe to repeat: a completed checkout is returned as is; the same authKey after a refusal
    answers the same refusal (TossCardDeclined) without a new charge; a new authKey (the customer
    tried another card) replaces the billing key and makes a new attempt."""
    now = now or timezone.now()
    digest = hashlib.sha256(auth_key.encode()).hexdigest()
    with transaction.atomic():
        checkout = EngineCheckout.objects.select_for_update().filter(pk=checkout_id).first()
        if checkout is None:
            raise EngineCheckoutNotFound("No such TossPayments checkout.")
        if not hmac.compare_digest(checkout.customer_key, customer_key):
            raise EngineCheckoutMismatch("This authorization belongs to another customer.")
        if checkout.completed_at is not None:
            return checkout
        if checkout.auth_key_digest == digest and checkout.error_code:
            raise TossCardDeclined(checkout.error_message, details={"toss_code": checkout.error_code})
        adapter = _adapter(checkout.mode)
        sub = checkout.subscription
        if sub is None or checkout.auth_key_digest != digest:
            billing = adapter.issue_billing_key(auth_key=auth_key, customer_key=checkout.customer_key)
            billing_key = billing.get("billingKey")
            if not isinstance(billing_key, str) or not billing_key:
                raise ProviderError("TossPayments issued no billing key.", code="toss_no_billing_key")
            card = billing.get("card") if isinstance(billing.get("card"), dict) else {}
            if sub is None:
                trial_end = now + dt.timedelta(days=checkout.trial_days) if checkout.trial_days else None
                sub = EngineSubscription(
                    id=secrets.token_hex(10),
                    mode=checkout.mode,
                    customer=checkout.customer,
                    customer_key=checkout.customer_key,
                    email=checkout.email,
                    price=checkout.price,
                    interval=checkout.interval,
                    unit_amount=checkout.unit_amount,
                    currency=checkout.currency,
                    quantity=checkout.quantity,
                    status=EngineStatus.TRIALING if trial_end else EngineStatus.INCOMPLETE,
                    period_start=now,
                    period_end=trial_end or now,
                )
            sub.billing_key = billing_key
            sub.card_company = str(billing.get("cardCompany") or card.get("issuerCode") or "")[:32]
            sub.card_number = str(billing.get("cardNumber") or card.get("number") or "")[:32]
            sub.save()
            checkout.subscription, checkout.auth_key_digest = sub, digest
            checkout.error_code, checkout.error_message = "", ""
            if sub.status == EngineStatus.TRIALING:  # nothing to charge before the trial ends
                checkout.completed_at = now
                checkout.save()
                _emit(
                    adapter, "subscription.created", _subscription_data(sub, checkout_id=checkout.pk), at=now
                )
                return checkout
            charge, created = EngineCharge.objects.get_or_create(
                subscription=sub,
                period=1,
                defaults={"order_id": _order_id(sub.id, 1, 1), "amount": 0, "currency": sub.currency},
            )
            if charge.status == EngineChargeStatus.FAILED:  # another card after a refusal: a new attempt
                charge.attempt += 1
                charge.order_id, charge.status = (
                    _order_id(sub.id, 1, charge.attempt),
                    EngineChargeStatus.PENDING,
                )
            if created or charge.invoice_id is None:  # the first period's fee, invoiced before the charge
                _bill(charge, first_invoice(sub=_esub(sub), period_start=now, period_end=now + _step(sub.interval),
                                            attempt=charge.attempt))  # fmt: skip
            charge.save()
            checkout.save()
    # the subscription and its charge row are committed before Toss is asked for money
    outcome, error = _settle(sub.pk, now=now)
    checkout.refresh_from_db()
    if outcome == "unavailable" or (outcome == "skipped" and checkout.completed_at is None):
        # Toss did not answer, or a concurrent reload holds the charge: reloading later is safe
        raise error or ProviderUnavailable("The payment is being processed; reload this page in a moment.")
    if outcome == "failed":
        raise TossCardDeclined(checkout.error_message, details={"toss_code": checkout.error_code})
    return checkout


# --- charging ----------------------------------------------------------------------------------


def _settle(sub_id: str, *, now: dt.datetime) -> tuple[str, ProviderError | None]:
    """Ask Toss for the subscription's pending charge and apply the answer.
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
        adapter = _adapter(sub.mode)
        if charge.amount <= 0:  # nothing due (a 100% discount, no usage): no call to Toss
            _paid(
                adapter, sub, charge, {"status": "DONE", "orderId": charge.order_id, "totalAmount": 0}, at=now
            )
            return "done", None
        try:
            payment = adapter.charge_billing_key(
                billing_key=sub.billing_key,
                customer_key=sub.customer_key,
                amount=charge.amount,
                order_id=charge.order_id,
                order_name=f"{sub.price} #{charge.period}"[:100],
                customer_email=sub.email,
            )
        except (ProviderUnavailable, ProviderNotConfigured) as exc:
            # no attempt counted: the row keeps its orderId/Idempotency-Key for the next try
            logger.warning("toss charge %s not attempted: %s", charge.order_id, exc.code)
            return "unavailable", exc
        except TossCardDeclined as exc:
            if exc.details.get("toss_code") not in ALREADY_PAID_CODES:
                _failed(
                    adapter,
                    sub,
                    charge,
                    code=str(exc.details.get("toss_code") or exc.code),
                    message=exc.message,
                    at=now,
                )
                return "failed", exc
            payment = adapter.get_payment_by_order(order_id=charge.order_id)  # it went through earlier
        if payment.get("status") != "DONE" or payment.get("orderId") != charge.order_id:
            _failed(adapter, sub, charge, code=str(payment.get("status") or "UNKNOWN"),
                    message="TossPayments did not complete the payment.", at=now)  # fmt: skip
            return "failed", None
        _paid(adapter, sub, charge, payment, at=now)
        return "done", None


def _paid(
    adapter: TossProvider, sub: EngineSubscription, charge: EngineCharge, payment: dict, *, at: dt.datetime
) -> None:
    charge.status, charge.payment_key = EngineChargeStatus.DONE, str(payment.get("paymentKey") or "")
    charge.failure_code, charge.failure_message = "", ""
    charge.save(update_fields=["status", "payment_key", "failure_code", "failure_message", "updated_at"])
    amount = int(payment.get("totalAmount") or charge.amount)
    paid = _payment_data(sub, charge, payment_id=charge.payment_key, amount=amount)
    if charge.final:  # the last invoice (the usage of the period the subscription ends with)
        sub.status, sub.period_number = EngineStatus.CANCELED, charge.period
        sub.save()
        if amount:
            _emit(adapter, "payment.succeeded", paid, at=at)
        _emit(adapter, "subscription.canceled", _subscription_data(sub), at=at)
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
        _emit(adapter, "subscription.created", _subscription_data(sub, **extra), at=at)
        if amount:
            _emit(adapter, "payment.succeeded", paid, at=at)
    else:
        if amount:
            _emit(adapter, "payment.succeeded", paid, at=at)
        _emit(adapter, "subscription.updated", _subscription_data(sub), at=at)


def _failed(
    adapter: TossProvider,
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
    _emit(adapter, "payment.failed", failed, at=at)
    if charge.final:  # the subscription ends anyway; its last invoice stays open for staff
        sub.status, sub.next_retry_at, sub.period_number = EngineStatus.CANCELED, None, charge.period
        sub.save()
        _emit(adapter, "subscription.canceled", _subscription_data(sub), at=at)
        return
    if sub.status != EngineStatus.PAST_DUE:
        sub.status, sub.failed_attempts, sub.first_failed_at = EngineStatus.PAST_DUE, 1, at
        sub.next_retry_at = at + dt.timedelta(days=RETRY_DAYS[0])
        sub.save()
        _emit(adapter, "subscription.updated", _subscription_data(sub), at=at)
        return
    sub.failed_attempts += 1
    if sub.failed_attempts > len(RETRY_DAYS):
        sub.status, sub.next_retry_at = EngineStatus.CANCELED, None
        sub.save()
        charge.status = EngineChargeStatus.VOID
        charge.save(update_fields=["status", "updated_at"])
        _emit(adapter, "subscription.canceled", _subscription_data(sub), at=at)
        return
    sub.next_retry_at = (sub.first_failed_at or at) + dt.timedelta(days=RETRY_DAYS[sub.failed_attempts - 1])
    sub.save()


def _void_unpaid(charge: EngineCharge) -> None:
    from billing.invoicing.models import Invoice

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
        charge = EngineCharge.objects.select_for_update().filter(subscription=sub, period=period).first()
        bill_usage = sub.status != EngineStatus.TRIALING
        if charge is None and renewing and sub.cancel_at_period_end:
            # the last invoice: the ended period's usage, no fee; nothing due ends it at once
            invoice = period_close(sub=_esub(sub), period_start=sub.period_start, period_end=sub.period_end,
                                   renews=False, bill_usage=bill_usage)  # fmt: skip
            if invoice.amount_due <= 0:
                sub.status = EngineStatus.CANCELED
                sub.save()
                _emit(_adapter(sub.mode), "subscription.canceled", _subscription_data(sub), at=sub.period_end)
                return "canceled"
            charge = EngineCharge(
                subscription=sub, period=period, order_id=_order_id(sub.id, period, 1), final=True
            )
            _bill(charge, invoice)
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
            charge = EngineCharge(subscription=sub, period=period, order_id=_order_id(sub.id, period, 1))
            _bill(charge, invoice)
            charge.save()
        elif charge.status == EngineChargeStatus.FAILED:  # a dunning retry: a new attempt, a new key
            charge.attempt += 1
            charge.order_id, charge.status = (
                _order_id(sub.id, period, charge.attempt),
                EngineChargeStatus.PENDING,
            )
            charge.save(update_fields=["attempt", "order_id", "status", "updated_at"])
        elif charge.status != EngineChargeStatus.PENDING:
            return "skipped"
        return "charge"


def charges_due_run(*, now: dt.datetime | None = None) -> int:
    """Charge every subscription whose period ended or whose dunning retry is due (beat, hourly,
    per tenant). Safe to run twice or concurrently. Returns the number of subscriptions that
    were charged, refused or ended."""
    now = now or timezone.now()
    due = (
        EngineSubscription.objects.filter(
            Q(status__in=[EngineStatus.ACTIVE, EngineStatus.TRIALING], period_end__lte=now)
            | Q(status=EngineStatus.PAST_DUE, next_retry_at__lte=now)
        )
        .order_by("period_end", "id")
        .values_list("pk", flat=True)[:DUE_BATCH]
    )
    played = 0
    for sub_id in list(due):
        try:
            claimed = _claim(sub_id, now=now)
            if claimed == "charge":
                claimed, _ = _settle(sub_id, now=now)
        except ProviderError as exc:  # one subscription's trouble does not stop the others
            logger.warning("toss subscription %s not charged: %s", sub_id, exc.code)
            continue
        played += claimed in ("done", "failed", "canceled")
    return played


# --- subscription changes (from membership services) ----------------------------------------------


def _locked(subscription_id: str) -> EngineSubscription:
    sub = EngineSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    if sub is None:
        raise ProviderError("No such TossPayments subscription.", code="subscription_not_found")
    if sub.status in (EngineStatus.CANCELED, EngineStatus.INCOMPLETE):
        raise EngineSubscriptionInvalid("The subscription has ended.", code="subscription_ended")
    return sub


def subscription_cancel(*, subscription_id: str, at_period_end: bool, now: dt.datetime | None = None) -> None:
    """At period end: no renewal (canceled when the period ends); now: canceled at once. A
    subscription that is past due or paused has no running period and ends at once."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = _locked(subscription_id)
        adapter = _adapter(sub.mode)
        if at_period_end and sub.status in (EngineStatus.ACTIVE, EngineStatus.TRIALING):
            sub.cancel_at_period_end = True
            sub.save()
            _emit(adapter, "subscription.updated", _subscription_data(sub), at=now)
            return
        sub.status, sub.next_retry_at = EngineStatus.CANCELED, None
        sub.save()
        EngineCharge.objects.filter(subscription=sub, status=EngineChargeStatus.FAILED).update(
            status=EngineChargeStatus.VOID
        )
        _emit(adapter, "subscription.canceled", _subscription_data(sub), at=now)


def subscription_pause(*, subscription_id: str, paused: bool, now: dt.datetime | None = None) -> None:
    """Paused: no charges. Resumed: a period that ended while paused is charged at the next run,
    from the resume on (the paused time is not billed)."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = _locked(subscription_id)
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
        _emit(_adapter(sub.mode), "subscription.updated", _subscription_data(sub), at=now)


def subscription_change(
    *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
) -> str:
    """The next period is charged at the new terms (Toss has no proration): "at_period_end"."""
    from billing.tiers.models import Price

    price = Price.objects.filter(code=price_ref, active=True).first()
    if price is None:
        raise TossUnsupported(
            f"No active price '{price_ref}'.", code="unknown_price", details={"price": price_ref}
        )
    _validate_terms(currency=price.currency, interval=interval, amount=unit_amount * quantity)
    with transaction.atomic():
        sub = _locked(subscription_id)
        sub.pending_price, sub.pending_unit_amount = price_ref, unit_amount
        sub.pending_interval, sub.pending_quantity = interval, quantity
        sub.save()
    return "at_period_end"


def charge_owner(*, order_id: str, payment_key: str) -> dict | None:
    """Whose charge a Toss payment is (for verified webhooks), or None if it is not ours."""
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
