"""The built-in sandbox provider: no account anywhere, same pipeline as a real provider.

Its events are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
`webhook-signature`, `whsec_` secret) with the standardwebhooks library and arrive at
`/webhooks/sandbox/` like any provider's. Payload:

    {"id": "evt_…", "type": "subscription.updated", "created_at": "2026-…Z",
     "data": {"subscription_id", "status", "customer", "price", "quantity",
              "period_start", "period_end", "cancel_at_period_end"}}
"""

from __future__ import annotations

import datetime as dt
import json

from django.utils.dateparse import parse_datetime
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    EventType,
    NormalizedEvent,
    PaymentState,
    SubscriptionState,
    UsageReport,
    WebhookVerificationFailed,
)

SUBSCRIPTION_TYPES = {
    "subscription.created": EventType.SUBSCRIPTION_CREATED,
    "subscription.updated": EventType.SUBSCRIPTION_UPDATED,
    "subscription.canceled": EventType.SUBSCRIPTION_CANCELED,
    "subscription.expired": EventType.SUBSCRIPTION_EXPIRED,
}
PAYMENT_TYPES = {
    "payment.succeeded": EventType.PAYMENT_SUCCEEDED,
    "payment.failed": EventType.PAYMENT_FAILED,
    "order.paid": EventType.ORDER_PAID,
    "refund.created": EventType.REFUND_CREATED,
}


def _when(value) -> dt.datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


class SandboxProvider:
    name = "sandbox"

    def __init__(self, *, webhook_secret: str):
        self.webhook_secret = webhook_secret

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        if not self.webhook_secret:
            raise WebhookVerificationFailed("The sandbox account has no webhook secret.")
        try:
            payload = Webhook(self.webhook_secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            raise WebhookVerificationFailed(f"Bad signature: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"]:
            raise WebhookVerificationFailed("A signed payload without an event id.")
        return payload

    def event_id(self, payload: dict) -> str:
        return payload["id"]

    def parse_event(self, payload: dict) -> NormalizedEvent:
        raw_type = str(payload.get("type", ""))
        data = payload.get("data") or {}
        occurred = _when(payload.get("created_at")) or dt.datetime.now(dt.UTC)
        common = {
            "provider": self.name,
            "event_id": payload["id"],
            "occurred_at": occurred,
            "raw_type": raw_type,
        }
        if raw_type in SUBSCRIPTION_TYPES:
            state = SubscriptionState(
                subscription_id=str(data["subscription_id"]),
                status=str(data["status"]),
                customer=str(data["customer"]),
                price_ref=str(data.get("price") or ""),
                quantity=int(data.get("quantity") or 1),
                period_start=_when(data.get("period_start")),
                period_end=_when(data.get("period_end")),
                cancel_at_period_end=bool(data.get("cancel_at_period_end")),
                checkout_id=str(data.get("checkout_id") or ""),
            )
            return NormalizedEvent(type=SUBSCRIPTION_TYPES[raw_type], subscription=state, **common)
        if raw_type in PAYMENT_TYPES:
            payment = PaymentState(
                payment_id=str(data["payment_id"]),
                amount=int(data["amount"]),
                currency=str(data["currency"]).lower(),
                customer=str(data["customer"]),
                subscription_id=str(data.get("subscription_id") or ""),
            )
            return NormalizedEvent(type=PAYMENT_TYPES[raw_type], payment=payment, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)

    # --- calls (the sandbox's own behaviour lives in sandbox_engine) ----------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        from billing.providers.sandbox_engine import checkout_create

        return checkout_create(request)

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        from billing.providers.sandbox_engine import subscription_cancel

        subscription_cancel(subscription_id=subscription_id, at_period_end=at_period_end)

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        from billing.providers.sandbox_engine import subscription_change

        return subscription_change(
            subscription_id=subscription_id,
            price_ref=price_ref,
            unit_amount=unit_amount,
            interval=interval,
            quantity=quantity,
        )

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        return "/account/plan/"  # the sandbox's "portal" is the tenant's own plan page

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None:
        from billing.providers.sandbox_engine import subscription_pause

        subscription_pause(subscription_id=subscription_id, paused=paused)

    # --- emitting (the sandbox is also the provider) ------------------------------------------

    def sign(
        self, *, payload: dict, msg_id: str | None = None, at: dt.datetime | None = None
    ) -> tuple[bytes, dict]:
        """(body, headers) of a Standard Webhooks delivery of `payload`."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        msg_id = msg_id or payload["id"]
        at = at or dt.datetime.now(dt.UTC)
        signature = Webhook(self.webhook_secret).sign(msg_id, at, body.decode())
        return body, {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }

    # --- usage (metering) ------------------------------------------------------------------------

    def report_usage(self, report: UsageReport) -> str:
        """Records the report (SandboxUsageReport), once per identifier like a provider would."""
        from billing.metering.sync_models import SandboxUsageReport

        row = SandboxUsageReport(
            identifier=report.report_id, customer=report.customer, meter=report.meter, quantity=report.quantity,
            period_start=report.period_start, period_end=report.period_end,
        )  # fmt: skip
        SandboxUsageReport.objects.bulk_create([row], ignore_conflicts=True)  # a resent identifier: kept once
        return f"sandbox_usage_{report.report_id}"
