"""The TossPayments adapter: the only module that talks to Toss's HTTP API (httpx, Basic auth with
`base64(secret_key + ":")`, base URL https://api.tosspayments.com).

Toss has billing keys (자동결제) but no subscriptions: the schedule is ours (billing/invoicing/engine), and
this adapter offers the calls it needs -- issue a billing key from the authKey of Toss's
billing-auth window (`POST /v1/billing/authorizations/issue`), charge it (`POST
/v1/billing/{billingKey}`, orderId = Idempotency-Key, both derived from our row ids), read a
payment back (`GET /v1/payments/{paymentKey}`, `GET /v1/payments/orders/{orderId}`).

Webhooks at `/webhooks/toss/` are of two kinds:
- Toss's own `PAYMENT_STATUS_CHANGED` (unsigned: Toss signs only payout.changed/seller.changed).
  The documented check is to fetch the payment back with the secret key and trust only that
  answer, so `verify_webhook` does exactly that and stores the *fetched* Payment, never the
  posted one; a payment whose orderId is not one of our charges is refused.
- Toss's other event types (DEPOSIT_CALLBACK, PAYOUT_STATUS_CHANGED, METHOD_UPDATED,
  CUSTOMER_STATUS_CHANGED, CANCEL_STATUS_CHANGED, BILLING_DELETED, payout.changed, seller.changed):
  answered 200 and stored nowhere (WebhookIgnored). Most are unsigned (DEPOSIT_CALLBACK carries only
  a per-payment `secret`; payout.changed/seller.changed a signature we hold no key for), and none can
  be checked cheaply -- but nothing in them is stored or acted on, so acknowledging a forged one
  changes nothing, and acknowledging a real one stops Toss retrying it for days.
- events our own engine emits (subscription.*, payment.*), signed by us:
  `x-monetize-toss-timestamp` (unix seconds) and `x-monetize-toss-signature` =
  `v1=` + hex HMAC-SHA256(key, "<timestamp>.<body>"), 300 s tolerance; the key is the account's
  webhook secret, or, when none is set, one derived from its secret key (never sent anywhere).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import quote

import httpx
from django.utils.dateparse import parse_datetime

from billing.providers._common import engine_event, json_object
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    EventType,
    NormalizedEvent,
    PaymentState,
    ProviderError,
    ProviderNotConfigured,
    ProviderNotSupported,
    ProviderUnavailable,
    RefundResult,
    SavedMethodCharge,
    SubscriptionEngine,
    WebhookIgnored,
    WebhookVerificationFailed,
)

BASE_URL = "https://api.tosspayments.com"
KST = dt.timezone(dt.timedelta(hours=9))
SIGNATURE_HEADER = "x-monetize-toss-signature"
TIMESTAMP_HEADER = "x-monetize-toss-timestamp"
SIGNATURE_TOLERANCE = 300
# Toss answers these with a 4xx but means "try again later"
MIN_AMOUNT = 100  # card payments from 100 won (BELOW_MINIMUM_AMOUNT)
ALREADY_PAID_CODES = frozenset({"ALREADY_PROCESSED_PAYMENT", "DUPLICATED_ORDER_ID"})
RETRYABLE_CODES = frozenset(
    {"PROVIDER_ERROR", "IDEMPOTENT_REQUEST_PROCESSING", "FAILED_INTERNAL_SYSTEM_PROCESSING"}
)

SUBSCRIPTION_TYPES = {
    "subscription.created": EventType.SUBSCRIPTION_CREATED,
    "subscription.updated": EventType.SUBSCRIPTION_UPDATED,
    "subscription.canceled": EventType.SUBSCRIPTION_CANCELED,
}
PAYMENT_TYPES = {"payment.succeeded": EventType.PAYMENT_SUCCEEDED, "payment.failed": EventType.PAYMENT_FAILED}


class TossCardDeclined(ProviderError):
    """Toss refused a charge (card declined, limit, stopped card): Toss's code is in details."""

    code = "card_declined"
    status_code = 402


class TossUnsupported(ProviderError):
    code = "currency_not_supported"
    status_code = 400


def _when(value) -> dt.datetime | None:
    """Toss timestamps are ISO 8601, sometimes without an offset (webhook createdAt): that is KST."""
    parsed = parse_datetime(value) if isinstance(value, str) and value else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=KST)
    return parsed


class TossProvider:
    name = "toss"
    # httpx's own network transport unless set: tests put an httpx.MockTransport here (the network edge)
    http_transport = None
    timeout = 30.0

    def __init__(
        self,
        *,
        webhook_secret: str = "",
        credentials: dict | None = None,
        mode: str = "test",
        engine: SubscriptionEngine | None = None,
    ):
        credentials = credentials or {}
        self.webhook_secret = webhook_secret
        self.engine = engine
        self.client_key = str(credentials.get("client_key", ""))
        self.secret_key = str(credentials.get("secret_key", ""))
        self.mode = mode

    def _engine(self):
        if self.engine is None:
            raise ProviderNotSupported("The TossPayments engine is not installed.")
        return self.engine

    # --- HTTP (errors mapped onto ours) ---------------------------------------------------------

    def _request(
        self, method: str, path: str, *, body: dict | None = None, idempotency_key: str = ""
    ) -> dict:
        if not self.secret_key:
            raise ProviderNotConfigured(
                'The TossPayments account has no secret key (credentials: {"client_key": "…", "secret_key": "…"}).'
            )
        token = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            with httpx.Client(
                base_url=BASE_URL, transport=self.http_transport, timeout=self.timeout
            ) as client:
                response = client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
            raise ProviderUnavailable(f"TossPayments did not answer: {exc.__class__.__name__}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if response.is_success:
            return data
        code, message = str(data.get("code") or ""), str(data.get("message") or response.reason_phrase)
        details = {"toss_code": code, "http_status": response.status_code}
        if response.status_code == 429 or response.status_code >= 500 or code in RETRYABLE_CODES:
            raise ProviderUnavailable(f"TossPayments failed: {message}", details=details)
        raise ProviderError(
            f"TossPayments refused: {message}", code="toss_" + (code.lower() or "error"), details=details
        )

    def issue_billing_key(self, *, auth_key: str, customer_key: str) -> dict:
        """`POST /v1/billing/authorizations/issue`: the Billing object (billingKey, card summary)."""
        return self._request(
            "POST",
            "/v1/billing/authorizations/issue",
            body={"authKey": auth_key, "customerKey": customer_key},
        )

    def charge_billing_key(
        self,
        *,
        billing_key: str,
        customer_key: str,
        amount: int,
        order_id: str,
        order_name: str,
        customer_email: str = "",
    ) -> dict:
        """`POST /v1/billing/{billingKey}` with `Idempotency-Key` = orderId: the Payment object.
        A refusal by the card or Toss is TossCardDeclined (402) with Toss's code in details."""
        body = {"customerKey": customer_key, "amount": amount, "orderId": order_id, "orderName": order_name}
        if customer_email:
            body["customerEmail"] = customer_email
        try:
            return self._request(
                "POST", f"/v1/billing/{quote(billing_key, safe='')}", body=body, idempotency_key=order_id
            )
        except (ProviderUnavailable, ProviderNotConfigured):
            raise
        except ProviderError as exc:
            if exc.details.get("http_status") == 401:  # our key, not the customer's card
                raise ProviderNotConfigured(exc.message, details=exc.details) from exc
            raise TossCardDeclined(exc.message, details=exc.details) from exc

    def validate_terms(self, *, currency: str, interval: str, amount: int) -> None:
        """What Toss's billing keys can be charged for: KRW, monthly or yearly, from 100 won."""
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

    def charge_saved_method(
        self, *, method: str, customer_key: str, amount: int, currency: str, key: str, description: str,
        email: str = "", metadata: dict | None = None,
    ) -> SavedMethodCharge:  # fmt: skip
        """Our engine's charge: the billing key `method` charged with orderId = Idempotency-Key =
        `key`. A key Toss has seen before (a crash after the charge) is fetched back, not charged
        again; a payment that is not DONE is a refusal."""
        try:
            payment = self.charge_billing_key(
                billing_key=method, customer_key=customer_key, amount=amount, order_id=key,
                order_name=description[:100], customer_email=email,
            )  # fmt: skip
        except TossCardDeclined as exc:
            toss_code = str(exc.details.get("toss_code") or exc.code)
            if toss_code not in ALREADY_PAID_CODES:
                return SavedMethodCharge(False, failure_code=toss_code, failure_message=exc.message)
            payment = self.get_payment_by_order(order_id=key)  # it went through earlier
        if payment.get("status") != "DONE" or payment.get("orderId") != key:
            return SavedMethodCharge(
                False, failure_code=str(payment.get("status") or "UNKNOWN"),
                failure_message="TossPayments did not complete the payment.",
            )  # fmt: skip
        return SavedMethodCharge(
            True,
            payment_id=str(payment.get("paymentKey") or ""),
            amount=int(payment.get("totalAmount") or amount),
        )

    def get_payment(self, *, payment_key: str) -> dict:
        """`GET /v1/payments/{paymentKey}`."""
        return self._request("GET", f"/v1/payments/{quote(payment_key, safe='')}")

    def get_payment_by_order(self, *, order_id: str) -> dict:
        """`GET /v1/payments/orders/{orderId}`."""
        return self._request("GET", f"/v1/payments/orders/{quote(order_id, safe='')}")

    def refund(
        self, *, payment_id: str, amount: int, currency: str, idempotency_key: str, reason: str
    ) -> RefundResult:
        """`POST /v1/payments/{paymentKey}/cancel` (a partial cancel when `amount` is below what is
        left) with `Idempotency-Key`: Toss answers a repeated key with its first answer, so a retry
        is the same cancel. The refund's id is that cancel's transactionKey (the one
        PAYMENT_STATUS_CHANGED later lists)."""
        if currency.lower() != "krw":
            raise TossUnsupported(f"TossPayments refunds KRW only, not {currency.upper()}.")
        payment = self._request(
            "POST",
            f"/v1/payments/{quote(payment_id, safe='')}/cancel",
            body={"cancelReason": CANCEL_REASONS.get(reason, "Refund"), "cancelAmount": amount},
            idempotency_key=idempotency_key,
        )
        cancels = [c for c in (payment.get("cancels") or []) if isinstance(c, dict)]
        if not cancels or not cancels[-1].get("transactionKey"):
            raise ProviderError("TossPayments answered a cancel without listing it.", code="toss_error")
        cancel = cancels[-1]
        return RefundResult(
            refund_id=str(cancel["transactionKey"]),
            amount=int(cancel.get("cancelAmount") or amount),
            status="succeeded" if cancel.get("cancelStatus", "DONE") == "DONE" else "pending",
        )

    # --- the provider protocol (our schedule lives in billing/invoicing/engine) -------------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        if not (self.client_key and self.secret_key):
            raise ProviderNotConfigured(
                'The TossPayments account needs credentials {"client_key": "…", "secret_key": "…"}.'
            )
        return self._engine().checkout_create(request, mode=self.mode)

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        self._engine().subscription_cancel(subscription_id=subscription_id, at_period_end=at_period_end)

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        """Always "at_period_end": the next period is charged at the new price (no proration)."""
        return self._engine().subscription_change(
            subscription_id=subscription_id,
            price_ref=price_ref,
            unit_amount=unit_amount,
            interval=interval,
            quantity=quantity,
        )

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None:
        self._engine().subscription_pause(subscription_id=subscription_id, paused=paused)

    # --- webhooks ---------------------------------------------------------------------------------

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


CANCEL_REASONS = {
    "duplicate": "Duplicate payment",
    "fraudulent": "Fraudulent payment",
    "order_change": "Order changed",
    "product_unsatisfactory": "Product unsatisfactory",
    "other": "Refund",
}

# Toss's documented webhook event types that this portal does not use (see the module docstring)
IGNORED_TOSS_EVENTS = frozenset({
    "DEPOSIT_CALLBACK", "PAYOUT_STATUS_CHANGED", "METHOD_UPDATED", "CUSTOMER_STATUS_CHANGED",
    "CANCEL_STATUS_CHANGED", "BILLING_DELETED", "payout.changed", "seller.changed",
})  # fmt: skip


def customer_key_generate() -> str:
    """A Toss customerKey: random, unguessable, within Toss's 2–300 chars of [A-Za-z0-9-_=.@]."""
    return "cus_" + secrets.token_hex(16)
