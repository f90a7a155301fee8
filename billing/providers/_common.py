"""What the hosted providers' adapters share: status names mapped onto ours, timestamps, JSON bodies."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from billing.providers.base import (
    EventType,
    NormalizedEvent,
    PaymentState,
    SubscriptionState,
    WebhookVerificationFailed,
)

SUBSCRIPTION_STATUS = {
    "incomplete": "incomplete",
    "incomplete_expired": "expired",
    "trialing": "trialing",
    "on_trial": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "paused": "paused",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "expired",
    "revoked": "canceled",
}


def json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationFailed("The signed body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationFailed("The signed body is not a JSON object.")
    return payload


def object_id(value) -> str:
    """A provider reference, expanded (an object) or not (its id)."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def decimal_of(value, *, default=None) -> Decimal | None:
    """A provider's quantity or unit amount (an int or a decimal string; a JSON number through its
    text) as a Decimal, never computed in floating point."""
    if value is None or isinstance(value, bool):
        return None if default is None else Decimal(default)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None if default is None else Decimal(default)
    return number if number.is_finite() else (None if default is None else Decimal(default))


def timestamp(value) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return parse_datetime(value) if isinstance(value, str) and value else None


# Events of the engines we run ourselves (the sandbox, and Toss's subscription schedule): one format,
# {"id", "type", "created_at", "data"}, signed by each provider's own scheme.
ENGINE_SUBSCRIPTION_TYPES = {
    "subscription.created": EventType.SUBSCRIPTION_CREATED,
    "subscription.updated": EventType.SUBSCRIPTION_UPDATED,
    "subscription.canceled": EventType.SUBSCRIPTION_CANCELED,
    "subscription.expired": EventType.SUBSCRIPTION_EXPIRED,
}
ENGINE_PAYMENT_TYPES = {
    "payment.succeeded": EventType.PAYMENT_SUCCEEDED,
    "payment.failed": EventType.PAYMENT_FAILED,
    "order.paid": EventType.ORDER_PAID,
    "refund.created": EventType.REFUND_CREATED,
}


def engine_event(provider: str, payload: dict, *, when=timestamp) -> NormalizedEvent:
    """A verified event of one of our own engines, normalized (`when` parses its timestamps)."""
    raw_type, data = str(payload.get("type", "")), payload.get("data") or {}
    common = {
        "provider": provider,
        "event_id": payload["id"],
        "occurred_at": when(payload.get("created_at")) or dt.datetime.now(dt.UTC),
        "raw_type": raw_type,
    }
    if raw_type in ENGINE_SUBSCRIPTION_TYPES:
        state = SubscriptionState(
            subscription_id=str(data["subscription_id"]),
            status=str(data["status"]),
            customer=str(data["customer"]),
            price_ref=str(data.get("price") or ""),
            quantity=int(data.get("quantity") or 1),
            period_start=when(data.get("period_start")),
            period_end=when(data.get("period_end")),
            cancel_at_period_end=bool(data.get("cancel_at_period_end")),
            provider_customer_id=str(data.get("customer_key") or ""),
            checkout_id=str(data.get("checkout_id") or ""),
        )
        return NormalizedEvent(type=ENGINE_SUBSCRIPTION_TYPES[raw_type], subscription=state, **common)
    if raw_type in ENGINE_PAYMENT_TYPES:
        payment = PaymentState(
            payment_id=str(data["payment_id"]),
            amount=int(data["amount"]),
            currency=str(data["currency"]).lower(),
            customer=str(data["customer"]),
            subscription_id=str(data.get("subscription_id") or ""),
            invoice=str(data.get("invoice") or ""),
            reference=str(data.get("reference") or ""),  # a refund's charge
            fee=_fee(data.get("fee")),  # the sandbox's simulated fee (tenant setting sandbox_fee_bps)
            checkout_id=str(data.get("checkout_id") or ""),  # a one-time payment's checkout
        )
        return NormalizedEvent(type=ENGINE_PAYMENT_TYPES[raw_type], payment=payment, **common)
    return NormalizedEvent(type=EventType.IGNORED, **common)


def _fee(value) -> int | None:
    """A fee an engine event reports: a non-negative integer of minor units, else none reported."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        fee = int(value)
    except ValueError:
        return None
    return fee if fee >= 0 else None
