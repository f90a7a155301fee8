"""Stripe in engine mode (see stripe.py): a setup-mode Checkout Session saves the card, our engine
charges it off-session, and signs its own events in Stripe's scheme. A mixin of StripeProvider."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from billing.providers._common import object_id as _id
from billing.providers.base import ProviderError, ProviderNotConfigured, SavedMethodCharge


class StripeEngineMode:
    prorates = True  # our engine charges an upgrade's difference at once (Stripe's always_invoice)

    def setup_session_create(
        self, *, checkout_id: str, customer: str, email: str, stripe_customer: str, success_url: str,
        cancel_url: str,
    ) -> tuple[str, str, str]:  # fmt: skip
        """A Checkout Session in setup mode that saves a card on the customer's Stripe Customer
        (created once, keyed by our customer id). Returns (Stripe customer id, session id, url);
        `success_url` may hold Stripe's {CHECKOUT_SESSION_ID} placeholder."""
        client = self._client()
        if not stripe_customer:
            params = {"metadata": {"monetize_customer": customer}, **({"email": email} if email else {})}
            stripe_customer = self._call(
                client.v1.customers.create, params=params, options={"idempotency_key": f"customer-{customer}"}
            ).id
        session = self._call(
            client.v1.checkout.sessions.create,
            params={
                "mode": "setup", "customer": stripe_customer, "payment_method_types": ["card"],
                "success_url": success_url, "cancel_url": cancel_url, "client_reference_id": checkout_id,
                "metadata": {"monetize_customer": customer, "monetize_checkout": checkout_id},
            },
            options={"idempotency_key": f"setup-{checkout_id}"},
        )  # fmt: skip
        return stripe_customer, session.id, session.url

    def setup_session_method(self, *, session_id: str) -> dict:
        """The card a completed setup session saved: {customer, method, brand, last4}."""
        client = self._client()
        session = self._call(
            client.v1.checkout.sessions.retrieve,
            session_id,
            params={"expand": ["setup_intent.payment_method"]},
        ).to_dict()
        intent = session.get("setup_intent") if isinstance(session.get("setup_intent"), dict) else {}
        method = intent.get("payment_method")
        if session.get("status") != "complete" or intent.get("status") != "succeeded" or not method:
            raise ProviderError("The card has not been saved at Stripe.", code="setup_incomplete")
        card = (method.get("card") or {}) if isinstance(method, dict) else {}
        return {
            "customer": _id(session.get("customer")),
            "method": _id(method),
            "brand": str(card.get("brand") or ""),
            "last4": str(card.get("last4") or ""),
        }

    def charge_saved_method(
        self, *, method: str, customer_key: str, amount: int, currency: str, key: str, description: str,
        email: str = "", metadata: dict | None = None,
    ) -> SavedMethodCharge:  # fmt: skip
        """A PaymentIntent confirmed off-session on the saved card, keyed `key` (a retry of the
        same attempt is answered with the first PaymentIntent). A card that is declined or needs
        the customer (authentication) is a refusal; Stripe not answering raises ProviderUnavailable."""
        import stripe

        client = self._client()
        params = {
            "amount": amount, "currency": currency, "customer": customer_key, "payment_method": method,
            "confirm": True, "off_session": True, "capture_method": "automatic",
            "metadata": {k: v for k, v in (metadata or {}).items() if v},
        }  # fmt: skip

        def create():
            try:
                return client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
            except stripe.CardError as exc:  # the card's answer, not a failure of the call
                return exc

        intent = self._call(create)
        if isinstance(intent, stripe.CardError):
            code = (
                getattr(getattr(intent, "error", None), "decline_code", None)
                or intent.code
                or "card_declined"
            )
            return SavedMethodCharge(False, failure_code=str(code), failure_message=self._scrub(intent))
        if intent.status == "succeeded":
            return SavedMethodCharge(
                True, payment_id=intent.id, amount=int(intent.to_dict().get("amount_received") or amount)
            )
        if intent.status == "requires_action":
            return SavedMethodCharge(
                False, failure_code="authentication_required",
                failure_message="The bank asks the customer to confirm this payment.",
            )  # fmt: skip
        return SavedMethodCharge(
            False, failure_code=str(intent.status), failure_message="Stripe did not take the payment."
        )

    def sign(self, *, payload: dict, at: float | None = None) -> tuple[bytes, dict]:
        """(body, headers) of one of our engine's events, signed in Stripe's scheme with the account's
        webhook secret, so verify_webhook takes it like any delivery."""
        if not self.webhook_secret:
            raise ProviderNotConfigured("The Stripe account has no webhook secret to sign events with.")
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(time.time() if at is None else at))
        digest = hmac.new(
            self.webhook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return body, {"stripe-signature": f"t={stamp},v1={digest}"}
