"""The Stripe adapter: the stripe SDK for API calls (errors mapped onto ours), Stripe's own v1
signature check (`Stripe-Signature`, HMAC with a 300 s timestamp tolerance) for webhooks.

Products and prices exist at Stripe before any checkout is offered: a price is found by its
lookup_key (= our price code) or created once with an idempotency key. Checkouts carry our ids in
metadata (`monetize_customer`, `monetize_price`, `monetize_checkout`), so events map back without a
lookup table; every create call has an idempotency key derived from our row id.
"""

from __future__ import annotations

from billing.providers._common import SUBSCRIPTION_STATUS, json_object, timestamp
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
            expires_at=timestamp(getattr(session, "expires_at", None)),
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
        return json_object(body)

    def event_id(self, payload: dict) -> str:
        return str(payload["id"])

    def parse_event(self, payload: dict) -> NormalizedEvent:
        kind, obj = payload.get("type", ""), payload["data"]["object"]
        common = {
            "provider": self.name,
            "event_id": str(payload["id"]),
            "occurred_at": timestamp(payload["created"]),
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
                period_start=timestamp(item.get("current_period_start") or obj.get("current_period_start")),
                period_end=timestamp(item.get("current_period_end") or obj.get("current_period_end")),
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
