"""Our subscription engine, for providers that only charge a saved payment method: TossPayments
(a billing key) and Stripe in engine mode (a PaymentMethod, charged off-session). The provider
keeps the method; we keep the schedule, the invoices and the dunning.

It tells the portal what happened only through events signed the way the provider signs its
webhooks (adapter.sign), which go through that provider's verification, the inbox and the normal
processing (delivered in-process to the inbox once our writes commit).

- Start: a provider's checkout (engine/toss.py, engine/stripe.py) saves a method;
  `subscription_start` writes the schedule, the first invoice and its charge row, and
  `subscription_first_charge` collects it once that has committed.
- Charges: one EngineCharge row per (subscription, period), committed before the provider is
  called; it collects its invoice's amount due under an idempotency key (`_order_id`), so a
  re-run or a crash replays the provider's first answer instead of charging twice.
- Renewals: `charges_due_run` (Celery beat, hourly per tenant) closes every period that has
  ended (close.period_close: its usage and the next fee) and charges the invoice; a refusal
  makes the subscription past_due with retries RETRY_DAYS after the first failure (+2, +5, +7
  days), then cancels it; a provider that does not answer counts no attempt.
- Cancel (at period end: the last period's usage is charged, no renewal; now: at once), pause
  (no charges while paused), change (the next period's price: "at_period_end", no proration).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.invoicing.close import BilledSubscription
from billing.invoicing.models import InvoiceStatus
from billing.invoicing.services import ENGINE_REF_PREFIX
from billing.providers.base import (
    ProviderError,
    ProviderNotConfigured,
)
from billing.providers.models import (
    EngineCharge,
    EngineChargeKind,
    EngineSubscription,
    ProviderAccount,
    SandboxClock,
)

logger = logging.getLogger(__name__)
RETRY_DAYS = (2, 5, 7)
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


def _adapter(provider: str, mode: str):
    from billing.providers.registry import provider_for

    account = ProviderAccount.objects.filter(provider=provider, mode=mode).first()
    if account is None:
        raise ProviderNotConfigured(f"No {provider} account ({mode}) is configured for this tenant.")
    return provider_for(account)


def _emit(adapter, sub: EngineSubscription, event_type: str, data: dict, *, at: dt.datetime) -> None:
    """Sign one event the way the provider signs its webhooks (adapter.sign) and deliver it to
    this tenant's inbox for that provider once our writes commit: the narrow port through which
    the engine tells the portal what happened, verified and applied like any provider event."""
    payload = {
        "id": "tevt_" + secrets.token_hex(12),
        "type": event_type,
        "created_at": at.isoformat(),
        "data": data,
    }
    body, headers = adapter.sign(payload=payload)
    deliver_on_commit(sub.provider, body, headers)


def deliver_on_commit(provider: str, body: bytes, headers: dict) -> None:
    """Hand a signed event to this tenant's inbox once our writes commit, in this tenant's schema
    whatever schema is active when the commit happens."""
    from billing.inbox.services import inbox_receive

    tenant = connection.tenant

    def deliver() -> None:
        with tenant_context(tenant):
            inbox_receive(provider=provider, body=body, headers=headers)

    transaction.on_commit(deliver)


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


def _sandbox_fee(amount: int) -> int:
    """The fee the sandbox keeps of a charge: the tenant's `sandbox_fee_bps` of it, rounded half up
    in integers (0 unless the tenant simulates one)."""
    bps = int(getattr(connection.tenant, "sandbox_fee_bps", 0) or 0)
    return (amount * bps + 5_000) // 10_000 if amount > 0 and bps > 0 else 0


def _invoice_ref(charge: EngineCharge) -> str:
    return f"{ENGINE_REF_PREFIX}{charge.invoice_id}" if charge.invoice_id else ""


def _esub(sub: EngineSubscription) -> BilledSubscription:
    return BilledSubscription(
        provider=sub.provider,
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


def _subscription_id(provider: str) -> str:
    # Toss's orderIds embed it (6-64 characters); elsewhere a prefix tells ours from the provider's own
    return secrets.token_hex(10) if provider == "toss" else "msub_" + secrets.token_hex(12)


def _order_id(sub: EngineSubscription, charge: EngineCharge) -> str:
    """The attempt's idempotency key. Toss: `tsub-<sub id>-<period>[-<attempt>]` (an orderId must
    be unique at Toss forever, and our invoice ids start again in every schema); elsewhere
    `invoice-<invoice id>-<attempt>`."""
    if sub.provider == "toss" and charge.kind == EngineChargeKind.PERIOD:
        suffix = "" if charge.attempt == 1 else f"-{charge.attempt}"
        return f"tsub-{sub.id}-{charge.period}{suffix}"
    return f"invoice-{charge.invoice_id}-{charge.attempt}"


def _check_terms(adapter, *, currency: str, interval: str, amount: int) -> None:
    """What the provider can charge a saved method for (Toss: KRW, from 100 won)."""
    check = getattr(adapter, "validate_terms", None)
    if check is not None:
        check(currency=currency, interval=interval, amount=amount)


# --- charging ----------------------------------------------------------------------------------


def engine_now(provider: str) -> dt.datetime:
    """The engine's now for a provider: real time, or the sandbox's clock (real time plus the
    offset `sandbox_advance` moved it by)."""
    if provider != "sandbox":
        return timezone.now()
    clock = SandboxClock.objects.first()
    return timezone.now() + dt.timedelta(seconds=clock.offset_seconds if clock else 0)
