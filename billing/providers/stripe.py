"""The Stripe adapter: the stripe SDK for API calls (errors mapped onto ours), Stripe's own v1
signature check (`Stripe-Signature`, HMAC with a 300 s timestamp tolerance) for webhooks.

Products and prices exist at Stripe before any checkout is offered: a price is found by its
lookup_key (= our price code) or created once with an idempotency key. Checkouts carry our ids in
metadata (`monetize_customer`, `monetize_price`, `monetize_checkout`), so events map back without a
lookup table; every create call has an idempotency key derived from our row id.

Engine mode (the account's credentials say `"billing": "engine"`): Stripe keeps the customer's card
and nothing else. Checkout is a Checkout Session in setup mode; our engine
(billing/invoicing/engine) runs the schedule, issues the invoices and charges them off-session with
PaymentIntents keyed `invoice-<id>-<attempt>`. Its events are signed here with the account's
webhook secret in Stripe's own scheme and go through the same verification and inbox.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from billing.providers._common import (
    json_object,
    timestamp,
)
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    NormalizedEvent,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RefundResult,
    SubscriptionEngine,
    UsageReport,
    WebhookVerificationFailed,
)
from billing.providers.stripe_balance import StripeBalance
from billing.providers.stripe_catalog import StripeCatalog
from billing.providers.stripe_connect import StripeConnect
from billing.providers.stripe_engine import StripeEngineMode
from billing.providers.stripe_events import parse_stripe_event

logger = logging.getLogger(__name__)
ENGINE_SUBSCRIPTION_PREFIX = "msub_"  # our engine's subscriptions (Stripe's own are sub_…)
_ADDRESS = re.compile(r"https?://[^\s'\")]+|\(host='[^']*', port=\d+\)")


class StripeProvider(StripeCatalog, StripeEngineMode, StripeBalance, StripeConnect):
    name = "stripe"
    # stripe's own HTTP client unless set: tests put a stripe.HTTPClient here (the network edge)
    http_client = None

    def __init__(
        self, *, webhook_secret: str, api_key: str = "", api_base: str = "", mode: str = "test",
        engine: SubscriptionEngine | None = None,
    ):  # fmt: skip
        self.webhook_secret = webhook_secret
        self.mode = mode
        self.engine = engine  # set in engine mode: our engine runs the subscriptions
        self.api_key = api_key
        self.api_base = (
            api_base  # another Stripe-compatible server (localstripe in tests); Stripe's own if blank
        )

    # --- API calls (the stripe SDK; errors mapped onto ours) -----------------------------------

    def _client(self):
        import stripe

        if not self.api_key:
            raise ProviderNotConfigured(
                'The Stripe account has no API key (credentials: {"api_key": "sk_…"}).'
            )
        return stripe.StripeClient(
            self.api_key,
            http_client=self.http_client,
            max_network_retries=2,
            base_addresses={"api": self.api_base} if self.api_base else {},
        )

    def _call(self, fn, *args, **kwargs):
        import stripe

        try:
            return fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            logger.warning("stripe did not answer: %s", exc)
            reason = "rate limited" if isinstance(exc, stripe.RateLimitError) else "no connection"
            raise ProviderUnavailable(f"Stripe did not answer ({reason}); try again later.") from exc
        except stripe.StripeError as exc:
            if (exc.http_status or 0) >= 500:
                raise ProviderUnavailable(f"Stripe failed: {self._scrub(exc)}") from exc
            raise ProviderError(
                f"Stripe refused: {self._scrub(exc)}", details={"stripe_code": exc.code}
            ) from exc

    def _scrub(self, exc) -> str:
        """Stripe's message without addresses: the integrator sees it, and it must not show the
        API base we call (another Stripe-compatible server in tests or behind a proxy)."""
        text = str(exc.user_message or exc)
        if self.api_base:
            text = text.replace(self.api_base.rstrip("/"), "")
        return _ADDRESS.sub("[address]", text)[:500]

    def _engine_runs(self, subscription_id: str) -> bool:
        return self.engine is not None and subscription_id.startswith(ENGINE_SUBSCRIPTION_PREFIX)

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        if self.engine is not None:  # engine mode: our page starts a setup-mode Checkout Session
            self._client()  # no API key: a clear 409 now rather than on the customer's click
            return self.engine.checkout_create(request, mode=self.mode)
        self._refuse_coupon(request.coupon, request.currency)
        client = self._client()
        metadata = {
            "monetize_customer": request.customer,
            "monetize_price": request.price_ref,
            "monetize_checkout": request.checkout_id,
        }
        recurring = request.interval in ("month", "year")
        params = {
            "mode": "subscription" if recurring else "payment",
            "line_items": [
                {
                    "price": self._price_id(
                        client,
                        price_ref=request.price_ref,
                        unit_amount=request.unit_amount,
                        currency=request.currency,
                        interval=request.interval,
                    ),
                    "quantity": request.quantity,
                }
            ],  # fmt: skip
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.checkout_id,
            "metadata": metadata,
        }
        if request.email:
            params["customer_email"] = request.email
        if request.coupon is not None:
            params["discounts"] = [
                {"coupon": self._coupon_id(client, request.coupon, interval=request.interval)}
            ]
        if not recurring:  # payment_intent.succeeded then names our checkout too
            params["payment_intent_data"] = {"metadata": metadata}
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
        if self._engine_runs(subscription_id):
            return self.engine.subscription_cancel(
                subscription_id=subscription_id, at_period_end=at_period_end
            )
        client = self._client()
        if at_period_end:
            self._call(client.v1.subscriptions.update, subscription_id, params={"cancel_at_period_end": True})
        else:
            self._call(client.v1.subscriptions.cancel, subscription_id)

    def uncancel_subscription(self, *, subscription_id: str) -> None:
        """Undo a cancellation scheduled for the period end; Stripe's webhook then reports it."""
        if self._engine_runs(subscription_id):
            return self.engine.subscription_uncancel(subscription_id=subscription_id)
        self._call(
            self._client().v1.subscriptions.update, subscription_id, params={"cancel_at_period_end": False}
        )

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        """An upgrade (or a same-price seat change) swaps the item now and invoices the proration at
        once; a downgrade waits for the period end through a subscription schedule, which Stripe
        releases back to a plain subscription after the switch."""
        if self._engine_runs(subscription_id):
            return self.engine.subscription_change(
                subscription_id=subscription_id, price_ref=price_ref, unit_amount=unit_amount,
                interval=interval, quantity=quantity,
            )  # fmt: skip
        client = self._client()
        sub = self._call(client.v1.subscriptions.retrieve, subscription_id).to_dict()
        item = sub["items"]["data"][0]
        price_id = self._price_id(
            client,
            price_ref=price_ref,
            unit_amount=unit_amount,
            currency=item["price"]["currency"],
            interval=interval,
        )
        current_total = (item["price"].get("unit_amount") or 0) * (item.get("quantity") or 1)
        if unit_amount * quantity >= current_total:
            self._call(
                client.v1.subscriptions.update,
                subscription_id,
                params={
                    "items": [{"id": item["id"], "price": price_id, "quantity": quantity}],
                    "proration_behavior": "always_invoice",
                    "cancel_at_period_end": False,
                },
            )
            return "now"
        schedule_id = sub.get("schedule")
        if isinstance(schedule_id, dict):
            schedule_id = schedule_id.get("id")
        if not schedule_id:
            schedule_id = self._call(
                client.v1.subscription_schedules.create, params={"from_subscription": subscription_id}
            ).id
        period_start = item.get("current_period_start") or sub.get("current_period_start")
        period_end = item.get("current_period_end") or sub.get("current_period_end")
        self._call(
            client.v1.subscription_schedules.update,
            schedule_id,
            params={
                "end_behavior": "release",
                "phases": [
                    {"items": [{"price": item["price"]["id"], "quantity": item.get("quantity") or 1}],
                     "start_date": period_start, "end_date": period_end},
                    {"items": [{"price": price_id, "quantity": quantity}], "iterations": 1},
                ],
            },
        )  # fmt: skip
        return "at_period_end"

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None:
        """Stripe pauses collection (invoices are voided while paused); its webhook then reports
        `pause_collection`, which we read as `paused`."""
        if self._engine_runs(subscription_id):
            return self.engine.subscription_pause(subscription_id=subscription_id, paused=paused)
        self._call(
            self._client().v1.subscriptions.update,
            subscription_id,
            params={"pause_collection": {"behavior": "void"} if paused else ""},
        )

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        if not provider_customer_id:
            raise ProviderError("This membership has no Stripe customer yet.", code="no_portal")
        session = self._call(
            self._client().v1.billing_portal.sessions.create, params={"customer": provider_customer_id}
        )
        return session.url

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
        """A Stripe Refund of a payment intent (`pi_…`) or a charge (`ch_…`, `py_…`), keyed by our
        credit note (`creditnote-<id>`: a retry is answered with the first refund). Our duplicate
        and fraudulent are Stripe's reasons of those names; the others send none (Stripe's
        requested_by_customer would claim what we do not know)."""
        if payment_id.startswith("pi_"):
            target = {"payment_intent": payment_id}
        elif payment_id.startswith(("ch_", "py_")):
            target = {"charge": payment_id}
        else:
            raise ProviderError(
                f"Stripe refunds a payment intent or a charge, not '{payment_id}'.", code="not_refundable"
            )
        # Stripe keeps an idempotency key 24 hours: a retry after that (the provider down a day, the
        # first answer lost) finds the refund by our key in its metadata instead of refunding twice
        listed = self._call(self._client().v1.refunds.list, params={**target, "limit": 100})
        ours = [r for r in listed.data if _metadata(r).get("monetize_refund") == idempotency_key]
        if reason in ("duplicate", "fraudulent"):
            target["reason"] = reason
        refund = ours[0] if ours else self._call(
            self._client().v1.refunds.create,
            params={**target, "amount": amount, "metadata": {"monetize_refund": idempotency_key}},
            options={"idempotency_key": idempotency_key},
        )  # fmt: skip
        if getattr(refund, "status", "") in ("failed", "canceled"):
            raise ProviderError(
                f"Stripe did not refund {payment_id} (refund {refund.status}).", code="refund_failed"
            )
        return RefundResult(
            refund_id=str(refund.id),
            amount=int(getattr(refund, "amount", None) or amount),
            status="pending" if getattr(refund, "status", "") == "pending" else "succeeded",
        )

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
        return parse_stripe_event(self.name, payload)

    def report_usage(self, report: UsageReport) -> str:
        """A Stripe Billing meter event: `event_name` is the meter's code, the value goes in the
        payload beside the Stripe customer, `identifier` (and the idempotency key) is our report's,
        so a resent report is recorded once. Timestamped now, or just before the period's end for
        a period that has ended."""
        if not report.provider_customer_id:
            raise ProviderError(
                f"Customer '{report.customer}' has no Stripe customer to report usage to.",
                code="no_provider_customer",
            )
        now = dt.datetime.now(dt.UTC)
        when = max(report.period_start, min(now, report.period_end - dt.timedelta(seconds=1)))
        if getattr(self, "_usage_client", None) is None:
            self._usage_client = self._client()  # one client (and its HTTP connections) for a whole sync run
        event = self._call(
            self._usage_client.v1.billing.meter_events.create,
            params={
                "event_name": report.meter,
                "payload": {"stripe_customer_id": report.provider_customer_id, "value": str(report.quantity)},
                "identifier": report.report_id,
                "timestamp": int(when.timestamp()),
            },
            options={"idempotency_key": report.report_id},
        )
        return str(getattr(event, "identifier", "") or report.report_id)


def _metadata(stripe_object) -> dict:
    metadata = getattr(stripe_object, "metadata", None)
    return metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata or {})
