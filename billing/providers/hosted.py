"""Webhook verification and event parsing for the hosted providers (Stripe, Polar, Lemon Squeezy).

Each verifies with its provider's own scheme -- Stripe's SDK (`Stripe-Signature`, v1 HMAC with a
timestamp tolerance), Polar's SDK (Standard Webhooks, `whsec_` secrets, several signatures during a
rotation), Lemon Squeezy's `X-Signature` (hex HMAC-SHA256 of the raw body) -- and maps subscription
events onto our SubscriptionState. Checkouts we create carry our ids in the provider's metadata
(`monetize_customer`, `monetize_price`), so events map back without a lookup table. Checkout and
subscription management calls through the SDKs are the payments issue's next increment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

from django.utils.dateparse import parse_datetime

from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    EventType,
    NormalizedEvent,
    PaymentState,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
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


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationFailed("The signed body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationFailed("The signed body is not a JSON object.")
    return payload


def _ts(value) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return parse_datetime(value) if isinstance(value, str) and value else None


class StripeProvider:
    name = "stripe"
    # stripe's own HTTP client unless set: tests put a stripe.HTTPClient here (the network edge)
    http_client = None

    def __init__(self, *, webhook_secret: str, api_key: str = ""):
        self.webhook_secret = webhook_secret
        self.api_key = api_key

    # --- API calls (the stripe SDK; errors mapped onto ours) -----------------------------------

    def _client(self):
        import stripe

        if not self.api_key:
            raise ProviderNotConfigured(
                'The Stripe account has no API key (credentials: {"api_key": "sk_…"}).'
            )
        return stripe.StripeClient(self.api_key, http_client=self.http_client, max_network_retries=2)

    def _call(self, fn, *args, **kwargs):
        import stripe

        try:
            return fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderUnavailable(f"Stripe did not answer: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            if (exc.http_status or 0) >= 500:
                raise ProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
            raise ProviderError(
                f"Stripe refused: {exc.user_message or exc}", details={"stripe_code": exc.code}
            ) from exc

    def _price_id(self, client, request: CheckoutRequest) -> str:
        """Our price at Stripe, found by lookup_key (= our price code) or created once: product and
        price exist at Stripe before any checkout is offered."""
        found = self._call(client.v1.prices.list, params={"lookup_keys": [request.price_ref], "limit": 1})
        if found.data:
            return found.data[0].id
        product = self._call(
            client.v1.products.create,
            params={"name": request.price_ref, "metadata": {"monetize_price": request.price_ref}},
            options={"idempotency_key": f"product-{request.price_ref}"},
        )
        params = {
            "product": product.id,
            "currency": request.currency,
            "unit_amount": request.unit_amount,
            "lookup_key": request.price_ref,
        }
        if request.interval in ("month", "year"):
            params["recurring"] = {"interval": request.interval}
        price = self._call(
            client.v1.prices.create,
            params=params,
            options={"idempotency_key": f"price-{request.price_ref}-{request.unit_amount}"},
        )
        return price.id

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        client = self._client()
        metadata = {
            "monetize_customer": request.customer,
            "monetize_price": request.price_ref,
            "monetize_checkout": request.checkout_id,
        }
        recurring = request.interval in ("month", "year")
        params = {
            "mode": "subscription" if recurring else "payment",
            "line_items": [{"price": self._price_id(client, request), "quantity": request.quantity}],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.checkout_id,
            "metadata": metadata,
        }
        if request.email:
            params["customer_email"] = request.email
        if recurring:
            params["subscription_data"] = {
                "metadata": metadata,
                **({"trial_period_days": request.trial_days} if request.trial_days else {}),
            }
        session = self._call(
            client.v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": f"checkout-{request.checkout_id}"},
        )
        return CheckoutSession(
            provider_checkout_id=session.id,
            url=session.url,
            expires_at=_ts(getattr(session, "expires_at", None)),
        )

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        client = self._client()
        if at_period_end:
            self._call(client.v1.subscriptions.update, subscription_id, params={"cancel_at_period_end": True})
        else:
            self._call(client.v1.subscriptions.cancel, subscription_id)

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        if not provider_customer_id:
            raise ProviderError("This membership has no Stripe customer yet.", code="no_portal")
        session = self._call(
            self._client().v1.billing_portal.sessions.create, params={"customer": provider_customer_id}
        )
        return session.url

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        import stripe

        try:
            stripe.WebhookSignature.verify_header(
                body, headers.get("stripe-signature"), self.webhook_secret, tolerance=300
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookVerificationFailed(f"Bad Stripe signature: {exc.user_message or exc}") from exc
        return _json(body)

    def event_id(self, payload: dict) -> str:
        return str(payload["id"])

    def parse_event(self, payload: dict) -> NormalizedEvent:
        kind, obj = payload.get("type", ""), payload["data"]["object"]
        common = {
            "provider": self.name,
            "event_id": str(payload["id"]),
            "occurred_at": _ts(payload["created"]),
            "raw_type": kind,
        }
        if kind.startswith("customer.subscription."):
            item = obj["items"]["data"][0]
            metadata = obj.get("metadata") or {}
            state = SubscriptionState(
                subscription_id=obj["id"],
                status=SUBSCRIPTION_STATUS.get(obj["status"], obj["status"]),
                customer=metadata.get("monetize_customer", ""),
                price_ref=item["price"].get("lookup_key") or metadata.get("monetize_price", ""),
                quantity=int(item.get("quantity") or 1),
                period_start=_ts(item.get("current_period_start") or obj.get("current_period_start")),
                period_end=_ts(item.get("current_period_end") or obj.get("current_period_end")),
                cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
                provider_customer_id=str(obj.get("customer") or ""),
            )
            types = {"created": EventType.SUBSCRIPTION_CREATED, "deleted": EventType.SUBSCRIPTION_CANCELED}
            return NormalizedEvent(
                type=types.get(kind.rsplit(".", 1)[1], EventType.SUBSCRIPTION_UPDATED),
                subscription=state,
                **common,
            )
        if kind in ("invoice.paid", "invoice.payment_failed"):
            payment = PaymentState(
                payment_id=obj["id"], amount=int(obj.get("amount_paid") or obj.get("amount_due") or 0),
                currency=str(obj.get("currency", "")).lower(), customer=(obj.get("metadata") or {}).get("monetize_customer", ""),
            )  # fmt: skip
            return NormalizedEvent(
                type=EventType.PAYMENT_SUCCEEDED if kind == "invoice.paid" else EventType.PAYMENT_FAILED,
                payment=payment,
                **common,
            )
        return NormalizedEvent(type=EventType.IGNORED, **common)


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
        occurred = _ts(data.get("modified_at")) or _ts(data.get("created_at")) or dt.datetime.now(dt.UTC)
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
                period_start=_ts(data.get("current_period_start")),
                period_end=_ts(data.get("current_period_end")),
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


class LemonSqueezyProvider:
    name = "lemonsqueezy"

    def __init__(self, *, webhook_secret: str):
        self.webhook_secret = webhook_secret

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        expected = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not self.webhook_secret or not hmac.compare_digest(expected, headers.get("x-signature", "")):
            raise WebhookVerificationFailed("Bad Lemon Squeezy X-Signature.")
        return _json(body)

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
        occurred = _ts(attributes.get("updated_at")) or dt.datetime.now(dt.UTC)
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
                period_end=_ts(attributes.get("renews_at") or attributes.get("ends_at")),
                cancel_at_period_end=bool(attributes.get("cancelled")),
                provider_customer_id=str(attributes.get("customer_id") or ""),
            )
            return NormalizedEvent(type=EventType.SUBSCRIPTION_UPDATED, subscription=state, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)
