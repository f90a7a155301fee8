"""The Lemon Squeezy adapter: `X-Signature` (hex HMAC-SHA256 of the raw body) verification and
subscription events mapped through the checkout's custom data."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from billing.providers._common import SUBSCRIPTION_STATUS, json_object, timestamp
from billing.providers.base import (
    EventType,
    NormalizedEvent,
    SubscriptionState,
    WebhookVerificationFailed,
)


class LemonSqueezyProvider:
    name = "lemonsqueezy"

    def __init__(self, *, webhook_secret: str):
        self.webhook_secret = webhook_secret

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        expected = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not self.webhook_secret or not hmac.compare_digest(expected, headers.get("x-signature", "")):
            raise WebhookVerificationFailed("Bad Lemon Squeezy X-Signature.")
        return json_object(body)

    def event_id(self, payload: dict) -> str:
        # Lemon Squeezy sends no event id: the event is its name, object and update time
        attributes = (payload.get("data") or {}).get("attributes") or {}
        meta = payload.get("meta") or {}
        return (
            f"{meta.get('event_name')}:{(payload.get('data') or {}).get('id')}:{attributes.get('updated_at')}"
        )

    def parse_event(self, payload: dict) -> NormalizedEvent:
        meta = payload.get("meta") or {}
        kind = meta.get("event_name", "")
        data = payload.get("data") or {}
        attributes = data.get("attributes") or {}
        occurred = timestamp(attributes.get("updated_at")) or dt.datetime.now(dt.UTC)
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        custom = meta.get("custom_data") or {}
        if kind.startswith("subscription_") and data.get("type") == "subscriptions":
            state = SubscriptionState(
                subscription_id=str(data["id"]),
                status=SUBSCRIPTION_STATUS.get(attributes.get("status", ""), attributes.get("status", "")),
                customer=custom.get("monetize_customer", ""),
                price_ref=custom.get("monetize_price", ""),
                period_end=timestamp(attributes.get("renews_at") or attributes.get("ends_at")),
                cancel_at_period_end=bool(attributes.get("cancelled")),
                provider_customer_id=str(attributes.get("customer_id") or ""),
            )
            return NormalizedEvent(type=EventType.SUBSCRIPTION_UPDATED, subscription=state, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)
