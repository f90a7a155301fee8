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
import hashlib
import json

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing.providers._common import engine_event
from billing.providers.base import (
    BalanceEntry,
    CheckoutRequest,
    CheckoutSession,
    ConnectOnboarding,
    ConnectOnboardingRequest,
    NormalizedEvent,
    ProviderError,
    ProviderNotSupported,
    RefundResult,
    SavedMethodCharge,
    SubscriptionEngine,
    Transfer,
    TransferResult,
    UsageReport,
    WebhookVerificationFailed,
)

CONNECT_SALT = "sandbox-connect"
CONNECT_LINK_SECONDS = 24 * 3600
# test cards: what charging each saved card does
CARD_BEHAVIOUR = {"ok": "pays", "fails_at_renewal": "pays at checkout, then is declined"}


class SandboxProvider:
    name = "sandbox"
    prorates = True  # an upgrade's difference is charged at once

    def __init__(self, *, webhook_secret: str, engine: SubscriptionEngine | None = None):
        self.webhook_secret = webhook_secret
        self.engine = engine

    def _engine(self) -> SubscriptionEngine:
        if self.engine is None:
            raise ProviderNotSupported("The sandbox engine is not installed.")
        return self.engine

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
        return engine_event(self.name, payload)

    # --- calls (the sandbox's subscriptions run on our engine: billing/invoicing/engine/sandbox.py) ------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        return self._engine().checkout_create(request, mode="test")

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        self._engine().subscription_cancel(subscription_id=subscription_id, at_period_end=at_period_end)

    def uncancel_subscription(self, *, subscription_id: str) -> None:
        self._engine().subscription_uncancel(subscription_id=subscription_id)

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        return self._engine().subscription_change(
            subscription_id=subscription_id,
            price_ref=price_ref,
            unit_amount=unit_amount,
            interval=interval,
            quantity=quantity,
        )

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        return "/sandbox/payment-method/"  # the sandbox's portal: update the saved test card

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None:
        self._engine().subscription_pause(subscription_id=subscription_id, paused=paused)

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
        """Refunded by the engine, which reports it as a signed `refund.created` event."""
        return self._engine().refund_create(
            payment_id=payment_id, amount=amount, currency=currency, idempotency_key=idempotency_key
        )

    def charge_saved_method(
        self, *, method: str, customer_key: str, amount: int, currency: str, key: str, description: str,
        email: str = "", metadata: dict | None = None,
    ) -> SavedMethodCharge:  # fmt: skip
        """The sandbox's card network: `ok` pays; `fails_at_renewal` (4000 0000 0000 0341) pays
        while the customer is at the checkout and is declined afterwards. The payment id derives
        from the idempotency key, so the same key again is the same payment."""
        if method == "fails_at_renewal" and not (metadata or {}).get("monetize_at_checkout"):
            return SavedMethodCharge(
                False, failure_code="card_declined", failure_message="Your card was declined."
            )
        if method not in CARD_BEHAVIOUR:
            return SavedMethodCharge(
                False, failure_code="card_declined", failure_message="Your card was declined."
            )
        payment_id = "pay_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        return SavedMethodCharge(True, payment_id=payment_id, amount=amount)

    def connect_onboarding(self, request: ConnectOnboardingRequest) -> ConnectOnboarding:
        """The sandbox's connected accounts: the id derives from the creator's key (the same
        creator, the same account); its onboarding page (a signed link: no open redirect to a
        return URL nobody gave) activates the account with one click."""
        from django.core import signing

        digest = hashlib.sha256(request.creator_key.encode()).hexdigest()[:16]
        account_id = request.account_id or f"acct_sbx_{digest}"
        token = signing.dumps({"account": account_id, "return_url": request.return_url}, salt=CONNECT_SALT)
        return ConnectOnboarding(account_id=account_id, url=f"/sandbox/connect/{token}/")

    def transfer(self, transfer: Transfer) -> TransferResult:
        """The sandbox pays a connected account at once: paid, ids derived from our key (the same
        payout, the same ids)."""
        if not transfer.account_id.startswith("acct_sbx_"):
            raise ProviderError(
                f"'{transfer.account_id}' is not a sandbox connected account.", code="unknown_account"
            )
        digest = hashlib.sha256(transfer.transfer_id.encode()).hexdigest()[:20]
        return TransferResult(transfer_id=f"tr_sbx_{digest}", payout_id=f"po_sbx_{digest}", status="paid")

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

    # --- its books (reconciliation) -------------------------------------------------------------

    def balance_transactions(self, *, since: dt.datetime, until: dt.datetime) -> list[BalanceEntry]:
        """The sandbox's charges and refunds in [since, until) on its clock (kept by the engine)."""
        return self._engine().balance_transactions(since=since, until=until)

    # --- usage (metering) ------------------------------------------------------------------------

    def report_usage(self, report: UsageReport) -> str:
        """Recorded by the engine, once per identifier like a provider would."""
        return self._engine().usage_report(report)
