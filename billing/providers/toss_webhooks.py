"""TossPayments webhooks (see toss.py): Toss's own PAYMENT_STATUS_CHANGED fetched back from its API,
its other event types acknowledged and stored nowhere, and our engine's own events, signed by us
(`x-monetize-toss-signature`). A mixin of TossProvider."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

from django.utils.dateparse import parse_datetime

from billing.providers._common import engine_event, json_object
from billing.providers.base import (
    EventType,
    NormalizedEvent,
    PaymentState,
    ProviderError,
    ProviderNotConfigured,
    WebhookIgnored,
    WebhookVerificationFailed,
)

KST = dt.timezone(dt.timedelta(hours=9))
SIGNATURE_HEADER = "x-monetize-toss-signature"
TIMESTAMP_HEADER = "x-monetize-toss-timestamp"
SIGNATURE_TOLERANCE = 300
SUBSCRIPTION_TYPES = {
    "subscription.created": EventType.SUBSCRIPTION_CREATED,
    "subscription.updated": EventType.SUBSCRIPTION_UPDATED,
    "subscription.canceled": EventType.SUBSCRIPTION_CANCELED,
}
PAYMENT_TYPES = {"payment.succeeded": EventType.PAYMENT_SUCCEEDED, "payment.failed": EventType.PAYMENT_FAILED}


def _when(value) -> dt.datetime | None:
    """Toss timestamps are ISO 8601, sometimes without an offset (webhook createdAt): that is KST."""
    parsed = parse_datetime(value) if isinstance(value, str) and value else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=KST)
    return parsed


class TossWebhooks:
    def _internal_key(self) -> bytes:
        if self.webhook_secret:
            return self.webhook_secret.encode()
        if self.secret_key:
            return hmac.new(
                self.secret_key.encode(), b"monetize-toss-internal-events", hashlib.sha256
            ).digest()
        return b""

    def sign(self, *, payload: dict, at: float | None = None) -> tuple[bytes, dict]:
        """(body, headers) of one of our own engine's events, signed for verify_webhook."""
        key = self._internal_key()
        if not key:
            raise ProviderNotConfigured("The TossPayments account has no secret key to sign events with.")
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(time.time() if at is None else at))
        digest = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "v1=" + digest}

    def _verify_internal(self, body: bytes, headers: dict[str, str]) -> dict:
        key = self._internal_key()
        stamp, signature = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
        if not key:
            raise WebhookVerificationFailed("The TossPayments account has no key to verify events with.")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE:
            raise WebhookVerificationFailed("Missing or stale event timestamp.")
        expected = "v1=" + hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise WebhookVerificationFailed("Bad signature.")
        payload = json_object(body)
        if (
            not isinstance(payload.get("id"), str)
            or not payload["id"]
            or payload.get("type")
            not in (
                *SUBSCRIPTION_TYPES,
                *PAYMENT_TYPES,
            )
        ):
            raise WebhookVerificationFailed("A signed event without an id or a known type.")
        return payload

    def _verify_toss(self, body: bytes) -> dict:
        posted = json_object(body)
        if posted.get("eventType") in IGNORED_TOSS_EVENTS:
            raise WebhookIgnored(f"TossPayments {posted['eventType']} is not used here.")
        if posted.get("eventType") != "PAYMENT_STATUS_CHANGED":
            raise WebhookVerificationFailed(
                f"Only PAYMENT_STATUS_CHANGED webhooks are accepted (got {str(posted.get('eventType'))[:50]!r})."
            )
        data = posted.get("data")
        payment_key = data.get("paymentKey") if isinstance(data, dict) else None
        if not isinstance(payment_key, str) or not payment_key or len(payment_key) > 200:
            raise WebhookVerificationFailed("A PAYMENT_STATUS_CHANGED webhook without a paymentKey.")
        try:
            payment = self.get_payment(payment_key=payment_key)
        except ProviderError as exc:  # 404 (not this account's payment), bad key, Toss down: Toss retries
            raise WebhookVerificationFailed(
                f"TossPayments did not confirm payment {payment_key}: {exc.message}"
            ) from exc
        if payment.get("paymentKey") != payment_key:
            raise WebhookVerificationFailed("TossPayments answered with another payment.")
        owner = self._engine().charge_owner(
            order_id=str(payment.get("orderId") or ""), payment_key=payment_key
        )
        if owner is None:
            raise WebhookVerificationFailed(f"Payment {payment_key} is not one of this portal's charges.")
        # the stored payload is Toss's answer to our own request, never the posted body
        return {
            "type": "PAYMENT_STATUS_CHANGED",  # what the inbox lists as the event type
            "eventType": "PAYMENT_STATUS_CHANGED",
            "createdAt": str(posted.get("createdAt") or ""),
            "data": payment,
            "monetize": owner,
        }

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        headers = {name.lower(): value for name, value in headers.items()}
        if SIGNATURE_HEADER in headers or TIMESTAMP_HEADER in headers:
            return self._verify_internal(body, headers)
        return self._verify_toss(body)

    def event_id(self, payload: dict) -> str:
        if "eventType" not in payload:
            return payload["id"]
        payment = payload["data"]
        cancels = payment.get("cancels") or []
        last = (
            (cancels[-1].get("transactionKey") if cancels else "") or payment.get("lastTransactionKey") or ""
        )
        return f"toss:{payment['paymentKey']}:{payment.get('status', '')}:{last}"[:255]

    def parse_event(self, payload: dict) -> NormalizedEvent:
        if "eventType" in payload:
            return self._parse_toss(payload)
        return engine_event(self.name, payload, when=_when)

    def _parse_toss(self, payload: dict) -> NormalizedEvent:
        """A fetched-back Payment: DONE is the charge (recorded once whichever path reports it
        first: our engine uses the same paymentKey); CANCELED/PARTIAL_CANCELED is a refund of the
        latest cancel (its transactionKey); anything else is ignored."""
        payment, owner = payload["data"], payload.get("monetize") or {}
        status = str(payment.get("status", ""))
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "raw_type": f"PAYMENT_STATUS_CHANGED:{status}",
        }
        currency = str(payment.get("currency") or "KRW").lower()
        base = {
            "customer": str(owner.get("customer", "")),
            "subscription_id": str(owner.get("subscription_id", "")),
            "invoice": str(owner.get("invoice", "")),
        }
        if status == "DONE":
            return NormalizedEvent(
                type=EventType.PAYMENT_SUCCEEDED,
                occurred_at=_when(payment.get("approvedAt"))
                or _when(payload.get("createdAt"))
                or dt.datetime.now(dt.UTC),
                payment=PaymentState(
                    payment_id=str(payment["paymentKey"]),
                    amount=int(payment.get("totalAmount") or 0),
                    currency=currency,
                    **base,
                ),
                **common,
            )
        cancels = [c for c in (payment.get("cancels") or []) if isinstance(c, dict)]
        if status in ("CANCELED", "PARTIAL_CANCELED") and cancels:
            # every cancel the payment lists, each keyed by its own transactionKey: two partial
            # cancels before either webhook arrives are two refunds (the later webhook, fetched back
            # with the same list, is then a duplicate)
            refunds = tuple(
                PaymentState(
                    payment_id=str(
                        cancel.get("transactionKey") or f"{payment['paymentKey']}-cancel-{number}"
                    ),
                    amount=int(cancel.get("cancelAmount") or 0),
                    currency=currency,
                    reference=str(payment["paymentKey"]),  # the charge it refunds
                    **base,
                )
                for number, cancel in enumerate(cancels, start=1)
                if cancel.get("cancelStatus", "DONE") == "DONE"
            )
            if not refunds:
                return NormalizedEvent(
                    type=EventType.IGNORED,
                    occurred_at=_when(payload.get("createdAt")) or dt.datetime.now(dt.UTC),
                    **common,
                )
            return NormalizedEvent(
                type=EventType.REFUND_CREATED,
                occurred_at=_when(cancels[-1].get("canceledAt"))
                or _when(payload.get("createdAt"))
                or dt.datetime.now(dt.UTC),
                payment=refunds[0],
                more_payments=refunds[1:],
                **common,
            )
        return NormalizedEvent(
            type=EventType.IGNORED,
            occurred_at=_when(payload.get("createdAt")) or dt.datetime.now(dt.UTC),
            **common,
        )


# Toss's documented webhook event types that this portal does not use (see the module docstring)
IGNORED_TOSS_EVENTS = frozenset({
    "DEPOSIT_CALLBACK", "PAYOUT_STATUS_CHANGED", "METHOD_UPDATED", "CUSTOMER_STATUS_CHANGED",
    "CANCEL_STATUS_CHANGED", "BILLING_DELETED", "payout.changed", "seller.changed",
})  # fmt: skip
