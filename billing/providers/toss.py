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
import secrets
from urllib.parse import quote

import httpx

from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderError,
    ProviderNotConfigured,
    ProviderNotSupported,
    ProviderUnavailable,
    RefundResult,
    SavedMethodCharge,
    SubscriptionEngine,
)
from billing.providers.toss_webhooks import TossWebhooks

BASE_URL = "https://api.tosspayments.com"
MIN_AMOUNT = 100  # card payments from 100 won (BELOW_MINIMUM_AMOUNT)
ALREADY_PAID_CODES = frozenset({"ALREADY_PROCESSED_PAYMENT", "DUPLICATED_ORDER_ID"})
CANCEL_REASONS = {
    "duplicate": "Duplicate payment",
    "fraudulent": "Fraudulent payment",
    "order_change": "Order changed",
    "product_unsatisfactory": "Product unsatisfactory",
    "other": "Refund",
}
# Toss answers these with a 4xx but means "try again later"
RETRYABLE_CODES = frozenset(
    {"PROVIDER_ERROR", "IDEMPOTENT_REQUEST_PROCESSING", "FAILED_INTERNAL_SYSTEM_PROCESSING"}
)


class TossCardDeclined(ProviderError):
    """Toss refused a charge (card declined, limit, stopped card): Toss's code is in details."""

    code = "card_declined"
    status_code = 402


class TossUnsupported(ProviderError):
    code = "currency_not_supported"
    status_code = 400


class TossProvider(TossWebhooks):
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
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        reason: str,
        refunded_before: int = 0,
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

    def uncancel_subscription(self, *, subscription_id: str) -> None:
        self._engine().subscription_uncancel(subscription_id=subscription_id)

    # --- webhooks ---------------------------------------------------------------------------------


def customer_key_generate() -> str:
    """A Toss customerKey: random, unguessable, within Toss's 2–300 chars of [A-Za-z0-9-_=.@]."""
    return "cus_" + secrets.token_hex(16)
