"""The Lemon Squeezy adapter: plain httpx against its JSON:API (https://api.lemonsqueezy.com/v1) for
checkouts and subscription changes, `X-Signature` (hex HMAC-SHA256 of the raw body) for webhooks.

Lemon Squeezy's API cannot create products or variants: staff create them in the Lemon Squeezy
dashboard and map each of our prices to a variant with a `ProviderProduct` row (provider
"lemonsqueezy", the account's mode, external_price_id = the variant id). A price without one is
refused at checkout, never guessed. Checkouts carry our ids in `checkout_data.custom`
(`monetize_customer`, `monetize_price`, `monetize_checkout`), which Lemon Squeezy returns as
`meta.custom_data` on order and subscription events. The API takes no idempotency key: a repeated
create is prevented on our side (the API's Idempotency-Key, one Checkout row per call). A checkout's
coupon is a discount code of the store (billing/providers/discounts.py), created once, given as
`checkout_data.discount_code`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import httpx
from dateutil.relativedelta import relativedelta

from billing.providers._common import SUBSCRIPTION_STATUS, json_object, timestamp
from billing.providers.base import (
    CatalogPrice,
    CheckoutRequest,
    CheckoutSession,
    EventType,
    InvoiceLineState,
    InvoiceState,
    NormalizedEvent,
    PaymentState,
    ProviderCatalog,
    ProviderError,
    ProviderNotConfigured,
    ProviderNotSupported,
    ProviderUnavailable,
    SubscriptionState,
    WebhookVerificationFailed,
)
from billing.providers.discounts import lemonsqueezy_discount, lemonsqueezy_refuse
from billing.providers.invoices import lemonsqueezy_invoice, lemonsqueezy_order_line

API_BASE = "https://api.lemonsqueezy.com/v1"
TIMEOUT = httpx.Timeout(10.0)
CHECKOUT_LIFETIME = dt.timedelta(hours=24)  # as our Checkout rows (memberships.services)
PERIODS = {"month": relativedelta(months=1), "year": relativedelta(years=1)}


class LemonSqueezyConflict(ProviderError):
    """The request cannot be sent as it stands (a mapping or a precondition is missing): staff or
    the customer must act first; retrying changes nothing."""

    status_code = 409


INVOICE_EVENTS = (
    "subscription_payment_success",
    "subscription_payment_failed",
    "subscription_payment_recovered",
    "subscription_payment_refunded",
)


def _attributes(document: dict) -> dict:
    return ((document.get("data") or {}).get("attributes")) or {}


def _amount(attributes: dict, *, refund: bool) -> int:
    """Minor units: a refund's refunded amount (else the whole total), a payment's total."""
    return int((attributes.get("refunded_amount") if refund else None) or attributes.get("total") or 0)


class LemonSqueezyProvider:
    name = "lemonsqueezy"
    # a variant has one fixed price: no tiers, packages or metered usage (checkout refuses the other
    # models before calling Lemon Squeezy: memberships.services.checkout)
    supported_models = frozenset({"flat", "per_seat"})
    # httpx's own network unless set: tests put an httpx.MockTransport here (the network edge)
    http_transport: httpx.BaseTransport | None = None

    def __init__(
        self,
        *,
        webhook_secret: str,
        api_key: str = "",
        store_id: str = "",
        mode: str = "test",
        catalog: ProviderCatalog | None = None,
    ):
        self.webhook_secret = webhook_secret
        self.catalog = catalog
        self.api_key = api_key
        self.store_id = str(store_id or "")
        self.mode = mode

    # --- API calls (JSON:API over httpx; errors mapped onto ours) ------------------------------

    def _request(self, method: str, path: str, *, body: dict | None = None) -> dict:
        if not self.api_key:
            raise ProviderNotConfigured(
                'The Lemon Squeezy account has no API key (credentials: {"api_key": "…", "store_id": "…"}).'
            )
        headers = {
            "Accept": "application/vnd.api+json",
            "Content-Type": "application/vnd.api+json",
            "Authorization": f"Bearer {self.api_key}",
        }
        try:
            with httpx.Client(
                base_url=API_BASE, transport=self.http_transport, timeout=TIMEOUT, headers=headers
            ) as client:
                response = client.request(
                    method, path, content=json.dumps(body).encode() if body is not None else None
                )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"Lemon Squeezy did not answer in time ({method} {path}).") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"Lemon Squeezy could not be reached ({type(exc).__name__}).") from exc
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderUnavailable(
                f"Lemon Squeezy answered {response.status_code}; try again later.",
                details={"status": response.status_code},
            )
        if response.status_code >= 400:
            errors = payload.get("errors") if isinstance(payload, dict) else None
            first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
            detail = first.get("detail") or first.get("title") or response.reason_phrase
            raise ProviderError(
                f"Lemon Squeezy refused: {detail}",
                details={
                    "status": response.status_code,
                    "pointer": (first.get("source") or {}).get("pointer", ""),
                },
            )
        if not isinstance(payload, dict):
            raise ProviderUnavailable("Lemon Squeezy answered with something other than a JSON object.")
        return payload

    def _update(self, kind: str, object_id, attributes: dict) -> dict:
        """PATCH a JSON:API resource; the updated object's attributes."""
        body = {"data": {"type": kind, "id": str(object_id), "attributes": attributes}}
        return _attributes(self._request("PATCH", f"/{kind}/{object_id}", body=body))

    def _variant_for(self, price_ref: str) -> str:
        """The Lemon Squeezy variant staff mapped our (active) price to."""
        mapping = (
            self.catalog.mapping(provider=self.name, mode=self.mode, price_code=price_ref)
            if self.catalog
            else None
        )
        if mapping is None or not mapping.external_price_id.strip().isdigit():
            found = (
                f"'{mapping.external_price_id}' is not a variant id" if mapping else "no variant is mapped"
            )
            raise LemonSqueezyConflict(
                f"Price '{price_ref}' cannot be sold through Lemon Squeezy ({self.mode} mode): {found}. "
                "Staff: create the variant in the Lemon Squeezy dashboard, then add a Provider product "
                f"(provider Lemon Squeezy, mode {self.mode}, this price, price id = the variant id) in the admin.",
                code="provider_product_missing",
                details={"price": price_ref, "provider": self.name, "mode": self.mode},
            )
        return mapping.external_price_id.strip()

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        if not self.store_id:
            raise ProviderNotConfigured(
                'The Lemon Squeezy account has no store id (credentials: {"api_key": "…", "store_id": "…"}).'
            )
        variant_id = self._variant_for(request.price_ref)
        lemonsqueezy_refuse(request.coupon, currency=request.currency, interval=request.interval)
        checkout_data: dict = {
            "custom": {
                "monetize_customer": request.customer,
                "monetize_price": request.price_ref,
                "monetize_checkout": request.checkout_id,
            },
        }
        if request.email:
            checkout_data["email"] = request.email
        if request.coupon is not None:
            checkout_data["discount_code"] = lemonsqueezy_discount(
                self, request.coupon, interval=request.interval
            )
        if request.quantity > 1:
            checkout_data["variant_quantities"] = [
                {"variant_id": int(variant_id), "quantity": request.quantity}
            ]
        expires_at = dt.datetime.now(dt.UTC) + CHECKOUT_LIFETIME
        attributes = {
            "checkout_data": checkout_data,
            # only the mapped variant: the product's other variants are other prices of ours
            "product_options": {"redirect_url": request.success_url, "enabled_variants": [int(variant_id)]},
            # trials are configured on the variant; our price without one must not get the variant's
            "checkout_options": {"skip_trial": request.trial_days == 0},
            "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
            "test_mode": self.mode == "test",
        }
        body = {
            "data": {
                "type": "checkouts",
                "attributes": attributes,
                "relationships": {
                    "store": {"data": {"type": "stores", "id": self.store_id}},
                    "variant": {"data": {"type": "variants", "id": variant_id}},
                },
            }
        }
        data = self._request("POST", "/checkouts", body=body).get("data") or {}
        url = (data.get("attributes") or {}).get("url")
        if not data.get("id") or not url:
            raise ProviderUnavailable("Lemon Squeezy created no checkout URL.")
        return CheckoutSession(
            provider_checkout_id=str(data["id"]),
            url=url,
            expires_at=timestamp((data.get("attributes") or {}).get("expires_at")) or expires_at,
        )

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        if not at_period_end:
            raise ProviderNotSupported(
                "Lemon Squeezy cannot end a subscription at once: a cancelled subscription runs to the end "
                "of its paid period (cancel with at_period_end=true).",
                code="cancel_now_not_supported",
            )
        # DELETE sets `cancelled`: the subscription expires at `ends_at` (end of the paid period)
        self._request("DELETE", f"/subscriptions/{subscription_id}")

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None:
        # "void": no invoices while paused (our paused membership grants the default tier only)
        self._update("subscriptions", subscription_id, {"pause": {"mode": "void"} if paused else None})

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        """Move to the mapped variant (and seat count) now: Lemon Squeezy has no scheduled change.
        An upgrade is invoiced at once (prorated); a downgrade is credited on the next invoice."""
        variant_id = self._variant_for(price_ref)
        current = _attributes(self._request("GET", f"/subscriptions/{subscription_id}"))
        item = current.get("first_subscription_item") or {}
        current_quantity = int(item.get("quantity") or 1)
        current_price = self._price_for_variant(str(current.get("variant_id") or ""), mode=self.mode)
        upgrade = (
            current_price is not None
            and unit_amount * quantity > current_price.unit_amount * current_quantity
        )
        if str(current.get("variant_id") or "") != variant_id:
            updated = self._update(
                "subscriptions",
                subscription_id,
                {"variant_id": int(variant_id), "invoice_immediately": upgrade},
            )
            portal = (updated.get("urls") or {}).get("customer_portal_update_subscription")
            if str(updated.get("variant_id") or "") != variant_id and portal:
                # PayPal subscriptions are not changed by the API: the customer must confirm in the portal
                raise LemonSqueezyConflict(
                    "Lemon Squeezy did not change this subscription (PayPal): the customer must confirm "
                    "the change in the customer portal.",
                    code="change_requires_portal",
                    details={"url": portal},
                )
        if quantity != current_quantity:
            if not item.get("id"):
                raise LemonSqueezyConflict(
                    "This Lemon Squeezy subscription has no subscription item yet (a free trial): seats "
                    "can change once it is billed.",
                    code="quantity_change_unavailable",
                )
            self._update(
                "subscription-items", item["id"], {"quantity": quantity, "invoice_immediately": upgrade}
            )
        return "now"

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        if not provider_customer_id:
            raise LemonSqueezyConflict("This membership has no Lemon Squeezy customer yet.", code="no_portal")
        customer_object = _attributes(self._request("GET", f"/customers/{provider_customer_id}"))
        url = (customer_object.get("urls") or {}).get("customer_portal")
        if not url:
            raise LemonSqueezyConflict(
                "Lemon Squeezy has no customer portal for this customer (no subscription in the store).",
                code="no_portal",
            )
        return url

    # --- webhooks -------------------------------------------------------------------------------

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        expected = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not self.webhook_secret or not hmac.compare_digest(expected, headers.get("x-signature", "")):
            raise WebhookVerificationFailed("Bad Lemon Squeezy X-Signature.")
        return json_object(body)

    def event_id(self, payload: dict) -> str:
        """Lemon Squeezy sends no event id: the event is its name, object, update time and a digest
        of the object's attributes (a seat change moves `first_subscription_item.quantity` but not
        `updated_at`, and must not be taken for a redelivery)."""
        attributes = (payload.get("data") or {}).get("attributes") or {}
        meta = payload.get("meta") or {}
        digest = hashlib.sha256(
            json.dumps(attributes, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()[:16]
        return (
            f"{meta.get('event_name')}:{(payload.get('data') or {}).get('id')}:"
            f"{attributes.get('updated_at')}:{digest}"
        )

    def event_type(self, payload: dict) -> str:
        return str((payload.get("meta") or {}).get("event_name") or "")

    def _price_for_variant(self, variant_id: str, *, mode: str) -> CatalogPrice | None:
        if not variant_id or self.catalog is None:
            return None
        mapping = self.catalog.mapping_for_external(
            provider="lemonsqueezy", mode=mode, external_price_id=variant_id
        )
        return self.catalog.price(mapping.price_code, active_only=False) if mapping else None

    def parse_event(self, payload: dict) -> NormalizedEvent:
        meta = payload.get("meta") or {}
        kind = meta.get("event_name", "")
        data = payload.get("data") or {}
        attributes = data.get("attributes") or {}
        occurred = timestamp(attributes.get("updated_at")) or dt.datetime.now(dt.UTC)
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        custom = meta.get("custom_data") or {}
        test_mode = attributes.get("test_mode")
        mode = self.mode if test_mode is None else ("test" if test_mode else "live")
        kind_of = data.get("type")
        if kind.startswith("subscription_") and kind_of == "subscriptions":
            return self._subscription_event(data, attributes, custom, mode=mode, common=common, kind=kind)
        if kind_of == "subscription-invoices" and kind in INVOICE_EVENTS:
            initial = attributes.get("billing_reason") == "initial"
            if kind == "subscription_payment_success" and initial:
                # the first invoice is the subscription's order: order_created records that payment
                # and mirrors that order as the invoice
                return NormalizedEvent(type=EventType.IGNORED, **common)
            subscription_id = str(attributes.get("subscription_id") or "")
            refund = kind == "subscription_payment_refunded"
            invoice_id = f"invoice:{data.get('id')}"
            payment = PaymentState(
                # a refund is known by the invoice's cumulative refunded amount only (memberships
                # records what is new of it, so a second partial refund is not taken for a redelivery)
                payment_id=f"refunded:{invoice_id}" if refund else invoice_id,
                reference=invoice_id,
                refunded_total=_amount(attributes, refund=True) if refund else None,
                amount=_amount(attributes, refund=refund),
                currency=str(attributes.get("currency") or "").lower(),
                customer=custom.get("monetize_customer")
                or "",  # else found from the subscription (memberships)
                subscription_id=subscription_id,
                invoice="" if refund else invoice_id,
            )
            types = {
                "subscription_payment_success": EventType.PAYMENT_SUCCEEDED,
                "subscription_payment_failed": EventType.PAYMENT_FAILED,
                # a failed renewal paid after all: recorded (and the membership leaves past_due)
                "subscription_payment_recovered": EventType.PAYMENT_SUCCEEDED,
                "subscription_payment_refunded": EventType.REFUND_CREATED,
            }
            # no number of its own (Lemon Squeezy numbers orders only), and no items: one line for the subtotal
            line = InvoiceLineState(
                description="Subscription change" if attributes.get("billing_reason") == "updated" else "Subscription renewal",
                amount=int(attributes.get("subtotal") or 0),
            )  # fmt: skip
            invoice = None if initial else lemonsqueezy_invoice(
                invoice_id, attributes, custom, subscription_id=subscription_id, number="", lines=(line,)
            )  # fmt: skip
            return NormalizedEvent(type=types[kind], payment=payment, invoice=invoice, **common)
        if kind_of == "orders" and kind in ("order_created", "order_refunded"):
            refund = kind == "order_refunded"
            invoice = self._order_invoice(data, attributes, custom, mode=mode)
            if not refund and attributes.get("status") != "paid":
                # only paid orders are payments; a pending order is an open invoice
                if invoice is None:
                    return NormalizedEvent(type=EventType.IGNORED, **common)
                return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
            payment = PaymentState(
                payment_id=f"refunded:order:{data.get('id')}" if refund else f"order:{data.get('id')}",
                reference=f"order:{data.get('id')}",  # a refund's charge (the order's payment)
                refunded_total=_amount(attributes, refund=True) if refund else None,
                amount=_amount(attributes, refund=refund),
                currency=str(attributes.get("currency") or "").lower(),
                customer=custom.get("monetize_customer", ""),
                # a paid order of a one-time price completes its checkout and grants the tier
                checkout_id="" if refund else str(custom.get("monetize_checkout") or ""),
                invoice="" if refund else f"order:{data.get('id')}",
            )
            return NormalizedEvent(
                type=EventType.REFUND_CREATED if refund else EventType.ORDER_PAID,
                payment=payment,
                invoice=invoice,
                **common,
            )
        return NormalizedEvent(type=EventType.IGNORED, **common)

    def _order_invoice(self, data: dict, attributes: dict, custom: dict, *, mode: str) -> InvoiceState | None:
        """A Lemon Squeezy order as an invoice: its order number, its own amounts (Lemon Squeezy is
        the merchant of record and computes the tax), its one item as the line (the variant maps to
        our price)."""
        variant = str((attributes.get("first_order_item") or {}).get("variant_id") or "")
        price = self._price_for_variant(variant, mode=mode)
        line = lemonsqueezy_order_line(attributes, price_ref=price.code if price else "")
        number = attributes.get("order_number")
        return lemonsqueezy_invoice(
            f"order:{data.get('id')}", attributes, custom, number=str(number or ""), lines=(line,)
        )

    def _subscription_event(
        self, data: dict, attributes: dict, custom: dict, *, mode: str, common: dict, kind: str
    ) -> NormalizedEvent:
        subscription_id = str(data["id"])
        raw_status = attributes.get("status", "")
        # the variant is the truth after a plan change; the checkout's custom data names the first price
        price = self._price_for_variant(str(attributes.get("variant_id") or ""), mode=mode)
        price_ref = price.code if price else custom.get("monetize_price", "")
        if price is None and price_ref and self.catalog is not None:
            price = self.catalog.price(price_ref, active_only=False)
        trial_end = timestamp(attributes.get("trial_ends_at"))
        if raw_status == "cancelled":
            # Lemon Squeezy's "cancelled" is a grace period: live until ends_at, then subscription_expired
            on_trial = trial_end is not None and trial_end > common["occurred_at"]
            status, period_end = ("trialing" if on_trial else "active"), timestamp(attributes.get("ends_at"))
        else:
            status = SUBSCRIPTION_STATUS.get(raw_status, raw_status)
            if raw_status == "on_trial":
                period_end = trial_end or timestamp(attributes.get("renews_at"))
            elif raw_status == "expired":
                period_end = timestamp(attributes.get("ends_at"))
            else:
                period_end = timestamp(attributes.get("renews_at")) or timestamp(attributes.get("ends_at"))
        if raw_status == "on_trial" or (raw_status == "cancelled" and status == "trialing"):
            period_start = timestamp(attributes.get("created_at"))
        elif period_end and price is not None and price.interval in PERIODS:
            period_start = period_end - PERIODS[price.interval]
        else:
            period_start = None
        item = attributes.get("first_subscription_item") or {}
        state = SubscriptionState(
            subscription_id=subscription_id,
            status=status,
            customer=custom.get("monetize_customer") or "",  # else found from the subscription (memberships)
            price_ref=price_ref,
            quantity=int(item.get("quantity") or 1),
            period_start=period_start,
            period_end=period_end,
            cancel_at_period_end=bool(attributes.get("cancelled")) and raw_status != "expired",
            provider_customer_id=str(attributes.get("customer_id") or ""),
            checkout_id=str(custom.get("monetize_checkout") or ""),
        )
        types = {
            "subscription_created": EventType.SUBSCRIPTION_CREATED,
            "subscription_expired": EventType.SUBSCRIPTION_EXPIRED,
        }
        return NormalizedEvent(
            type=types.get(kind, EventType.SUBSCRIPTION_UPDATED), subscription=state, **common
        )
