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
import json

import httpx

from billing.providers._common import timestamp
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderCatalog,
    ProviderError,
    ProviderNotConfigured,
    ProviderNotSupported,
    ProviderUnavailable,
    RefundResult,
)
from billing.providers.discounts import lemonsqueezy_discount, lemonsqueezy_refuse
from billing.providers.lemonsqueezy_webhooks import LemonSqueezyWebhooks

API_BASE = "https://api.lemonsqueezy.com/v1"
TIMEOUT = httpx.Timeout(10.0)
CHECKOUT_LIFETIME = dt.timedelta(hours=24)  # as our Checkout rows (memberships.services)


class LemonSqueezyConflict(ProviderError):
    """The request cannot be sent as it stands (a mapping or a precondition is missing): staff or
    the customer must act first; retrying changes nothing."""

    status_code = 409


def _attributes(document: dict) -> dict:
    return ((document.get("data") or {}).get("attributes")) or {}


class LemonSqueezyProvider(LemonSqueezyWebhooks):
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
        """A (partial) refund of an order (`order:<id>`) or a subscription invoice (`invoice:<id>`):
        `POST /v1/orders/{id}/refund` or `/v1/subscription-invoices/{id}/refund`. Lemon Squeezy takes
        no idempotency key and names no refund: the object's cumulative `refunded_amount` is read
        first, and a retry whose money is already in it (what our earlier refunds of this charge
        came to, plus this one) refunds nothing more. Its webhook reports the new cumulative figure,
        the id returned here (`refunded_total:<charge>:<total>`)."""
        kind, _, object_id = payment_id.partition(":")
        resource = {"order": "orders", "invoice": "subscription-invoices"}.get(kind)
        if resource is None or not object_id.isdigit():
            raise ProviderError(
                f"Lemon Squeezy refunds an order or a subscription invoice, not '{payment_id}'.",
                code="not_refundable",
            )
        current = _attributes(self._request("GET", f"/{resource}/{object_id}"))
        refunded = int(current.get("refunded_amount") or 0)
        if refunded < refunded_before + amount:
            body = {"data": {"type": resource, "id": object_id, "attributes": {"amount": amount}}}
            current = _attributes(self._request("POST", f"/{resource}/{object_id}/refund", body=body))
            refunded = int(current.get("refunded_amount") or refunded + amount)
        return RefundResult(refund_id=f"refunded_total:{payment_id}:{refunded}", amount=amount)

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
