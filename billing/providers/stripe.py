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
    ENGINE_SUBSCRIPTION_TYPES,
    SUBSCRIPTION_STATUS,
    engine_event,
    json_object,
    timestamp,
)
from billing.providers._common import object_id as _id
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutState,
    EventType,
    NormalizedEvent,
    PaymentState,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RefundResult,
    SavedMethodCharge,
    SubscriptionEngine,
    SubscriptionState,
    UsageReport,
    WebhookVerificationFailed,
)
from billing.providers.invoices import stripe_invoice, stripe_invoice_metadata, stripe_invoice_subscription

logger = logging.getLogger(__name__)
ENGINE_SUBSCRIPTION_PREFIX = "msub_"  # our engine's subscriptions (Stripe's own are sub_…)
INVOICE_EVENTS = (
    "invoice.finalized", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
    "invoice.voided", "invoice.marked_uncollectible",
)  # fmt: skip
_ADDRESS = re.compile(r"https?://[^\s'\")]+|\(host='[^']*', port=\d+\)")


class StripeProvider:
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

    def _price_id(self, client, *, price_ref: str, unit_amount: int, currency: str, interval: str) -> str:
        """Our price at Stripe, found by lookup_key (= our price code) or created once: product and
        price exist at Stripe before any checkout is offered."""
        found = self._call(client.v1.prices.list, params={"lookup_keys": [price_ref], "limit": 1})
        if found.data:
            return found.data[0].id
        product = self._call(
            client.v1.products.create,
            params={"name": price_ref, "metadata": {"monetize_price": price_ref}},
            options={"idempotency_key": f"product-{price_ref}"},
        )
        params = {
            "product": product.id,
            "currency": currency,
            "unit_amount": unit_amount,
            "lookup_key": price_ref,
        }
        if interval in ("month", "year"):
            params["recurring"] = {"interval": interval}
        price = self._call(
            client.v1.prices.create,
            params=params,
            options={"idempotency_key": f"price-{price_ref}-{unit_amount}"},
        )
        return price.id

    def _engine_runs(self, subscription_id: str) -> bool:
        return self.engine is not None and subscription_id.startswith(ENGINE_SUBSCRIPTION_PREFIX)

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        if self.engine is not None:  # engine mode: our page starts a setup-mode Checkout Session
            self._client()  # no API key: a clear 409 now rather than on the customer's click
            return self.engine.checkout_create(request, mode=self.mode)
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
        self, *, payment_id: str, amount: int, currency: str, idempotency_key: str, reason: str
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
        if reason in ("duplicate", "fraudulent"):
            target["reason"] = reason
        refund = self._call(
            self._client().v1.refunds.create,
            params={**target, "amount": amount, "metadata": {"monetize_refund": idempotency_key}},
            options={"idempotency_key": idempotency_key},
        )
        if getattr(refund, "status", "") in ("failed", "canceled"):
            raise ProviderError(
                f"Stripe did not refund {payment_id} (refund {refund.status}).", code="refund_failed"
            )
        return RefundResult(
            refund_id=str(refund.id),
            amount=int(getattr(refund, "amount", None) or amount),
            status="pending" if getattr(refund, "status", "") == "pending" else "succeeded",
        )

    # --- engine mode: a saved card, charged by our engine --------------------------------------------

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
        import hashlib
        import hmac
        import json
        import time

        if not self.webhook_secret:
            raise ProviderNotConfigured("The Stripe account has no webhook secret to sign events with.")
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(time.time() if at is None else at))
        digest = hmac.new(
            self.webhook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return body, {"stripe-signature": f"t={stamp},v1={digest}"}

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
        kind = payload.get("type", "")
        if kind in ENGINE_SUBSCRIPTION_TYPES or kind in ("payment.succeeded", "payment.failed"):
            return engine_event(self.name, payload)  # our engine's (Stripe's own types never look so)
        obj = payload["data"]["object"]
        common = {
            "provider": self.name,
            "event_id": str(payload["id"]),
            "occurred_at": timestamp(payload["created"]),
            "raw_type": kind,
        }
        if kind.startswith("customer.subscription."):
            item = obj["items"]["data"][0]
            metadata = obj.get("metadata") or {}
            status = SUBSCRIPTION_STATUS.get(obj["status"], obj["status"])
            if status == "active" and obj.get("pause_collection"):
                status = "paused"
            state = SubscriptionState(
                subscription_id=obj["id"],
                status=status,
                customer=metadata.get("monetize_customer", ""),
                # a price's lookup_key is our price code; a legacy plan (localstripe) carries only metadata
                price_ref=(item.get("price") or {}).get("lookup_key") or metadata.get("monetize_price", ""),
                quantity=int(item.get("quantity") or 1),
                period_start=timestamp(item.get("current_period_start") or obj.get("current_period_start")),
                period_end=timestamp(item.get("current_period_end") or obj.get("current_period_end")),
                cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
                provider_customer_id=_id(obj.get("customer")),
                # an expanded customer carries its email: a Dashboard subscription is matched by it
                email=str((obj.get("customer") or {}).get("email") or "")
                if isinstance(obj.get("customer"), dict)
                else "",
            )
            types = {"created": EventType.SUBSCRIPTION_CREATED, "deleted": EventType.SUBSCRIPTION_CANCELED}
            return NormalizedEvent(
                type=types.get(kind.rsplit(".", 1)[1], EventType.SUBSCRIPTION_UPDATED),
                subscription=state,
                **common,
            )
        if kind in INVOICE_EVENTS:
            invoice = stripe_invoice(obj)
            if kind not in ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"):
                if invoice is None:  # a draft: mirrored once finalized
                    return NormalizedEvent(type=EventType.IGNORED, **common)
                return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
            # Stripe sends both invoice.paid and invoice.payment_succeeded for one invoice: the payment
            # is keyed on the invoice id, so it is recorded once (a $0 trial invoice is no payment:
            # memberships.payment_record skips it)
            payments = [p for p in ((obj.get("payments") or {}).get("data") or []) if isinstance(p, dict)]
            paid_with = (payments[0].get("payment") or {}) if payments else {}
            payment = PaymentState(
                payment_id=obj["id"],
                amount=int(obj.get("amount_paid") or obj.get("amount_due") or 0),
                currency=str(obj.get("currency", "")).lower(),
                customer=stripe_invoice_metadata(obj).get("monetize_customer", ""),
                subscription_id=stripe_invoice_subscription(obj),
                provider_customer_id=_id(obj.get("customer")),
                # older API versions name the charge and intent on the invoice; newer ones in its payments
                reference=_id(obj.get("charge")) or _id(paid_with.get("charge")),
                intent=_id(obj.get("payment_intent")) or _id(paid_with.get("payment_intent")),
                invoice=str(obj["id"]),
            )
            failed = kind == "invoice.payment_failed"
            return NormalizedEvent(
                type=EventType.PAYMENT_FAILED if failed else EventType.PAYMENT_SUCCEEDED,
                payment=payment,
                invoice=invoice,
                **common,
            )
        if kind == "charge.refunded":
            # each refund listed on the charge, keyed by its own id (refund.created and
            # charge.refund.updated name the same ids, so each refund is one row however it arrives);
            # a charge without the list (newer API versions) leaves them to refund.created
            listed = [r for r in ((obj.get("refunds") or {}).get("data") or []) if isinstance(r, dict)]
            refunds = tuple(
                _refund(r, charge=obj) for r in listed if r.get("status") not in ("failed", "canceled")
            )
            if not refunds:
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(
                type=EventType.REFUND_CREATED, payment=refunds[0], more_payments=refunds[1:], **common
            )
        if kind in ("refund.created", "refund.updated", "charge.refund.updated"):
            if obj.get("status") in ("failed", "canceled"):
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(type=EventType.REFUND_CREATED, payment=_refund(obj), **common)
        if kind in ("charge.dispute.created", "charge.dispute.closed"):
            if kind == "charge.dispute.created":
                type_ = EventType.DISPUTE_CREATED
            else:
                type_ = EventType.DISPUTE_LOST if obj.get("status") == "lost" else EventType.DISPUTE_WON
            payment = PaymentState(
                payment_id=str(obj["id"]),
                amount=int(obj.get("amount") or 0),
                currency=str(obj.get("currency", "")).lower(),
                customer=(obj.get("metadata") or {}).get("monetize_customer", ""),
                reference=_id(obj.get("charge")),
                intent=_id(obj.get("payment_intent")),
            )
            return NormalizedEvent(type=type_, payment=payment, **common)
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            metadata = obj.get("metadata") or {}
            checkout_id = str(metadata.get("monetize_checkout") or obj.get("client_reference_id") or "")
            email = str((obj.get("customer_details") or {}).get("email") or obj.get("customer_email") or "")
            checkout = CheckoutState(
                checkout_id=checkout_id, provider_customer_id=_id(obj.get("customer")), email=email
            )
            payment = None
            if obj.get("mode") == "payment" and obj.get("payment_status") in ("paid", "no_payment_required"):
                # a one-time purchase: recorded under its payment intent, as payment_intent.succeeded is
                payment = PaymentState(
                    payment_id=_id(obj.get("payment_intent")) or str(obj["id"]),
                    amount=int(obj.get("amount_total") or 0),
                    currency=str(obj.get("currency") or "").lower(),
                    customer=metadata.get("monetize_customer", ""),
                    provider_customer_id=checkout.provider_customer_id,
                    intent=_id(obj.get("payment_intent")),
                    checkout_id=checkout_id,
                    email=email,
                    invoice=_id(obj.get("invoice")),
                )
            elif obj.get("mode") == "payment":  # paid later (async_payment_succeeded) or never
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, checkout=checkout, **common)
        if kind == "payment_intent.succeeded":
            metadata = obj.get("metadata") or {}
            if not metadata.get("monetize_checkout"):
                # a subscription's payment intent: its invoice records it
                return NormalizedEvent(type=EventType.IGNORED, **common)
            payment = PaymentState(
                payment_id=str(obj["id"]),
                amount=int(obj.get("amount_received") or obj.get("amount") or 0),
                currency=str(obj.get("currency", "")).lower(),
                customer=metadata.get("monetize_customer", ""),
                provider_customer_id=_id(obj.get("customer")),
                reference=_id(obj.get("latest_charge")),
                intent=str(obj["id"]),
                checkout_id=str(metadata["monetize_checkout"]),
                invoice=_id(obj.get("invoice")),  # older API versions name the invoice it pays
            )
            return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)

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


def _refund(refund: dict, *, charge: dict | None = None) -> PaymentState:
    """One Stripe refund, keyed by its own id; its charge (when the event carries it) names the customer."""
    charge = charge or {}
    return PaymentState(
        payment_id=str(refund["id"]),
        amount=int(refund.get("amount") or 0),
        currency=str(refund.get("currency") or charge.get("currency") or "").lower(),
        customer=(charge.get("metadata") or {}).get("monetize_customer", ""),
        provider_customer_id=_id(charge.get("customer")),
        reference=_id(refund.get("charge")) or _id(charge.get("id")),
        intent=_id(refund.get("payment_intent")) or _id(charge.get("payment_intent")),
    )
