"""The Polar adapter: Standard Webhooks verification through polar-sdk (`whsec_` secrets, several
signatures during a rotation); subscription and order events mapped through our metadata."""

from __future__ import annotations

import datetime as dt

from billing.providers._common import SUBSCRIPTION_STATUS, timestamp
from billing.providers.base import (
    EventType,
    NormalizedEvent,
    PaymentState,
    SubscriptionState,
    WebhookVerificationFailed,
)


class _AnyEventType(frozenset):
    """Polar's validator checks the type against a set; we store every verified type (and ignore the
    ones we do not act on) rather than refuse a type this SDK version does not know."""

    def __contains__(self, item) -> bool:
        return isinstance(item, str)


class PolarProvider:
    name = "polar"

    def __init__(self, *, webhook_secret: str):
        self.webhook_secret = webhook_secret

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        from polar.webhooks import PolarWebhookError, validate_event

        try:
            return validate_event(body, headers, self.webhook_secret, _AnyEventType(), lambda data: data)
        except PolarWebhookError as exc:
            raise WebhookVerificationFailed(f"Bad Polar signature: {exc}") from exc

    def event_id(self, payload: dict) -> str:
        # Standard Webhooks' webhook-id is the delivery's id; Polar's payload has no event id of its
        # own, so the event is identified by type + object + its modification time
        data = payload.get("data") or {}
        return f"{payload.get('type')}:{data.get('id')}:{data.get('modified_at') or data.get('created_at')}"

    def parse_event(self, payload: dict) -> NormalizedEvent:
        kind, data = payload.get("type", ""), payload.get("data") or {}
        occurred = (
            timestamp(data.get("modified_at")) or timestamp(data.get("created_at")) or dt.datetime.now(dt.UTC)
        )
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        if kind.startswith("subscription."):
            metadata = data.get("metadata") or {}
            customer = data.get("customer") or {}
            state = SubscriptionState(
                subscription_id=str(data["id"]),
                status=SUBSCRIPTION_STATUS.get(data.get("status", ""), data.get("status", "")),
                customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
                price_ref=metadata.get("monetize_price", ""),
                period_start=timestamp(data.get("current_period_start")),
                period_end=timestamp(data.get("current_period_end")),
                cancel_at_period_end=bool(data.get("cancel_at_period_end")),
                provider_customer_id=str(data.get("customer_id") or ""),
            )
            return NormalizedEvent(type=EventType.SUBSCRIPTION_UPDATED, subscription=state, **common)
        if kind == "order.paid":  # never order.created: only paid orders count
            metadata = data.get("metadata") or {}
            payment = PaymentState(
                payment_id=str(data["id"]), amount=int(data.get("total_amount") or 0),
                currency=str(data.get("currency", "")).lower(), customer=metadata.get("monetize_customer", ""),
            )  # fmt: skip
            return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)
