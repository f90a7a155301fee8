"""The Polar adapter: polar-sdk (API version 2026-10) for API calls, errors mapped onto ours; Standard
Webhooks verification through polar-sdk (`whsec_` secrets, several signatures during a rotation).

Our price is a Polar product (one fixed price) that exists at Polar before any checkout offers it:
a `ProviderProduct` row per provider+mode+price, created once (found again at Polar by its
metadata if our row was rolled back after Polar created it). Polar takes no idempotency keys, so
checkouts carry our ids in metadata (`monetize_customer`, `monetize_price`, `monetize_checkout`)
and events map back through them and through the product id. Polar cannot pause (a pause at the
period end is not our pause) and does not sell quantities of a fixed price: both are refused. A checkout's coupon is a Polar
discount (billing/providers/discounts.py) created once per coupon and mode, given as `discount_id`.
"""

from __future__ import annotations

import datetime as dt
import logging

from billing.providers._common import SUBSCRIPTION_STATUS, timestamp
from billing.providers.base import (
    CatalogPrice,
    CheckoutRequest,
    CheckoutSession,
    CouponConflict,
    CouponTerms,
    EventType,
    NormalizedEvent,
    PaymentState,
    ProductMapping,
    ProviderCatalog,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    SubscriptionState,
    UsageReport,
    WebhookVerificationFailed,
)
from billing.providers.discounts import polar_discount_body, polar_discount_matches, polar_refuse
from billing.providers.invoices import polar_order_invoice

logger = logging.getLogger(__name__)

RECURRING = ("month", "year")
ORDER_EVENTS = ("order.created", "order.paid", "order.updated", "order.refunded")
PRORATION = "prorate"  # the change applies now; the difference lands on the next invoice


class PolarRequestUnsupported(ProviderError):
    """What we were asked cannot be sold through Polar as configured (refused before any call)."""

    code = "provider_request_unsupported"
    status_code = 422


class _AnyEventType(frozenset):
    """Polar's validator checks the type against a set; we store every verified type (and ignore the
    ones we do not act on) rather than refuse a type this SDK version does not know."""

    def __contains__(self, item) -> bool:
        return isinstance(item, str)


class PolarProvider:
    name = "polar"
    # what a Polar product's one fixed price can bill: no tiers, packages or metered usage (checkout
    # refuses the other models before calling Polar: memberships.services.checkout)
    supported_models = frozenset({"flat", "per_seat"})
    # httpx's own transport unless set: tests put an httpx.MockTransport here (the network edge)
    http_transport = None
    timeout = 10.0

    def __init__(
        self,
        *,
        webhook_secret: str,
        access_token: str = "",
        mode: str = "test",
        organization_id: str | None = None,
        catalog: ProviderCatalog | None = None,
    ):
        self.webhook_secret = webhook_secret
        self.catalog = catalog
        self.access_token = access_token
        self.mode = mode
        self.environment = "production" if mode == "live" else "sandbox"
        self.organization_id = organization_id or None

    # --- API calls (polar-sdk; errors mapped onto ours) ----------------------------------------

    def _sdk(self):
        import httpx
        from polar.v2026_10 import Polar

        if not self.access_token:
            raise ProviderNotConfigured(
                'The Polar account has no access token (credentials: {"access_token": "polar_oat_…"}).'
            )
        sdk = Polar(
            self.access_token,
            environment=self.environment,
            timeout=self.timeout,
            organization_id=self.organization_id,
        )
        if self.http_transport is not None:
            # polar-sdk takes no client or transport: rebuild its httpx client around ours, same settings
            inner = sdk._client._client
            sdk._client._client = httpx.Client(
                base_url=inner.base_url,
                timeout=inner.timeout,
                headers=inner.headers,
                transport=self.http_transport,
            )
            inner.close()
        return sdk

    def _call(self, fn, *args, **kwargs):
        from polar import PolarClientError, PolarDeserializationError, PolarNetworkError, PolarServerError

        try:
            return fn(*args, **kwargs)
        except PolarNetworkError as exc:  # connection errors and timeouts
            raise ProviderUnavailable(f"Polar did not answer: {exc.message}") from exc
        except PolarServerError as exc:
            raise ProviderUnavailable(
                f"Polar failed ({exc.status_code}); try again later.",
                details={"polar_status": exc.status_code},
            ) from exc
        except PolarClientError as exc:
            if exc.status_code == 429:
                raise ProviderUnavailable(
                    "Polar asked us to slow down; try again later.", details={"polar_status": 429}
                ) from exc
            raise ProviderError(
                f"Polar refused ({exc.status_code}): {_error_message(exc.error)}",
                details={"polar_status": exc.status_code},
            ) from exc
        except PolarDeserializationError as exc:
            raise ProviderError("Polar answered in a shape this adapter cannot read.") from exc

    def _price(self, price_ref: str) -> CatalogPrice:
        price = self.catalog.price(price_ref) if self.catalog else None
        if price is None:
            raise PolarRequestUnsupported(f"No active price '{price_ref}'.", code="unknown_price")
        if price.model not in self.supported_models:
            raise PolarRequestUnsupported(
                f"Price '{price_ref}' is {price.model}: the Polar adapter sells flat and per-seat prices only.",
                code="price_not_supported",
                details={"price": price_ref, "model": price.model},
            )
        return price

    @staticmethod
    def _refuse_quantity(quantity: int) -> None:
        if quantity != 1:
            # our products carry one fixed price; Polar's seat-based prices are a different product
            raise PolarRequestUnsupported(
                "Polar checkouts and subscriptions here are for a quantity of 1; more seats are not supported.",
                code="quantity_not_supported",
                details={"quantity": quantity},
            )

    def _product(self, sdk, price: CatalogPrice) -> ProductMapping:
        """Our price's Polar product: our mapping, else found at Polar by its metadata (created there
        by an attempt whose transaction rolled back), else created; stored once (ON CONFLICT)."""
        from django.db import connection

        row = self.catalog.mapping(provider=self.name, mode=self.mode, price_code=price.code)
        if row is not None:
            return row
        metadata = {
            "monetize_price": price.code,
            "monetize_price_id": str(price.id),
            "monetize_tenant": connection.schema_name,
        }
        found = self._call(sdk.products.list, metadata=metadata, is_archived=False, limit=1).items
        product = found[0] if found else self._call(sdk.products.create, **_product_body(price, metadata))
        fixed = next((p for p in product.prices if getattr(p, "amount_type", "") == "fixed"), None)
        row = self.catalog.mapping_store(
            provider=self.name,
            mode=self.mode,
            price=price,
            external_product_id=product.id,
            external_price_id=fixed.id if fixed else "",
        )
        if row.external_product_id != product.id and not found:
            # a concurrent request stored its product first: ours is archived, never offered
            try:
                self._call(sdk.products.update, product.id, is_archived=True)
            except ProviderError:
                logger.warning("could not archive duplicate Polar product %s", product.id, exc_info=True)
        return row

    def _discount(self, sdk, coupon: CouponTerms, *, interval: str) -> str:
        """Our coupon's Polar discount: our row, else found at Polar by its metadata (created by an
        attempt whose transaction rolled back), else created (no code: only our checkouts give it)."""
        from django.db import connection

        months = coupon.months(interval) or 0
        key = {"provider": self.name, "mode": self.mode, "coupon_code": coupon.code, "months": months}
        found = self.catalog.discount(**key)
        if found:
            return found
        metadata = {"monetize_coupon": coupon.code, "monetize_months": months,
                    "monetize_tenant": connection.schema_name}  # fmt: skip
        body = polar_discount_body(coupon, interval=interval, metadata=metadata)
        listed = self._call(sdk.discounts.list, query=coupon.code, limit=100).items
        ours = [
            d for d in listed if all(str((d.metadata or {}).get(k)) == str(v) for k, v in metadata.items())
        ]
        discount = ours[0] if ours else self._call(sdk.discounts.create, **body)
        if ours and not polar_discount_matches(discount, body):
            raise CouponConflict(
                f"Polar holds a discount for coupon '{coupon.code}' with other terms than ours; it is not given.",
                details={"coupon": coupon.code, "polar_discount": discount.id},
            )
        stored = self.catalog.discount_store(**key, external_id=discount.id)
        if stored != discount.id and not ours:
            # a concurrent checkout stored its discount first: ours is deleted, never given
            try:
                self._call(sdk.discounts.delete, discount.id)
            except ProviderError:
                logger.warning("could not delete duplicate Polar discount %s", discount.id, exc_info=True)
        return stored

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        self._refuse_quantity(request.quantity)
        price = self._price(request.price_ref)
        polar_refuse(request.coupon, currency=price.currency)
        with self._sdk() as sdk:
            product = self._product(sdk, price)
            body = {
                "products": [product.external_product_id],
                "metadata": {
                    "monetize_customer": request.customer,
                    "monetize_price": request.price_ref,
                    "monetize_checkout": request.checkout_id,
                },
                "external_customer_id": request.customer,
                "success_url": request.success_url,
                "return_url": request.cancel_url,
            }
            if request.email:
                body["customer_email"] = request.email
            if request.trial_days and price.interval in RECURRING:
                body |= {"trial_interval": "day", "trial_interval_count": request.trial_days}
            if request.coupon is not None:
                body["discount_id"] = self._discount(sdk, request.coupon, interval=price.interval)
            checkout = self._call(sdk.checkouts.create, **body)
        return CheckoutSession(
            provider_checkout_id=checkout.id, url=checkout.url, expires_at=timestamp(checkout.expires_at)
        )

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None:
        with self._sdk() as sdk:
            if at_period_end:
                self._call(sdk.subscriptions.update, subscription_id, cancel_at_period_end=True)
            else:
                self._call(sdk.subscriptions.revoke, subscription_id)

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        self._refuse_quantity(quantity)
        price = self._price(price_ref)
        with self._sdk() as sdk:
            product = self._product(sdk, price)
            self._call(
                sdk.subscriptions.update,
                subscription_id,
                product_id=product.external_product_id,
                proration_behavior=PRORATION,
            )
        return "now"

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str:
        who = (
            {"customer_id": provider_customer_id}
            if provider_customer_id
            else {"external_customer_id": customer}
        )
        with self._sdk() as sdk:
            session = self._call(sdk.customer_sessions.create, **who)
        return session.customer_portal_url

    # --- webhooks ------------------------------------------------------------------------------

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
        occurred = (
            timestamp(data.get("modified_at")) or timestamp(data.get("created_at")) or dt.datetime.now(dt.UTC)
        )
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        metadata = data.get("metadata") or {}
        customer = data.get("customer") or {}
        if kind.startswith("subscription."):
            status = SUBSCRIPTION_STATUS.get(data.get("status", ""), data.get("status", ""))
            if kind == "subscription.revoked":  # ended now, whatever else the payload says
                status = "canceled"
            state = SubscriptionState(
                subscription_id=str(data["id"]),
                status=status,
                customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
                price_ref=_price_ref(data, metadata, self.catalog),
                quantity=int(data.get("seats") or 1),
                period_start=timestamp(data.get("current_period_start")),
                period_end=timestamp(data.get("current_period_end")),
                cancel_at_period_end=bool(data.get("cancel_at_period_end")),
                provider_customer_id=str(data.get("customer_id") or customer.get("id") or ""),
                checkout_id=str(metadata.get("monetize_checkout") or ""),
                email=str(customer.get("email") or ""),
            )
            types = {
                "subscription.created": EventType.SUBSCRIPTION_CREATED,
                "subscription.revoked": EventType.SUBSCRIPTION_CANCELED,
            }
            return NormalizedEvent(
                type=types.get(kind, EventType.SUBSCRIPTION_UPDATED), subscription=state, **common
            )  # fmt: skip
        if kind in ORDER_EVENTS:
            # a Polar order is its invoice: mirrored from every order event (a draft once finalized);
            # only a paid order is a payment (never a pending order.created), keyed on the order, so
            # order.paid and an order.updated that says paid record it once
            invoice = polar_order_invoice(data, metadata, customer)
            who = {
                "currency": str(data.get("currency", "")).lower(),
                "customer": metadata.get("monetize_customer") or customer.get("external_id") or "",
                "subscription_id": str(data.get("subscription_id") or ""),
                "provider_customer_id": str(data.get("customer_id") or customer.get("id") or ""),
                "reference": str(data["id"]),
                "invoice": str(data["id"]),
            }
            if kind == "order.refunded":
                # the order carries only its cumulative refunded amount: memberships records what the
                # refund.* events (keyed by each refund) have not, and they then record nothing twice
                refunded = int(data.get("refunded_amount") or 0)
                payment = PaymentState(
                    payment_id=f"order_refunded:{data['id']}", amount=refunded, refunded_total=refunded, **who
                )
                return NormalizedEvent(
                    type=EventType.REFUND_CREATED, payment=payment if refunded > 0 else None, invoice=invoice,
                    **common,
                )  # fmt: skip
            if data.get("paid") or data.get("status") == "paid" or kind == "order.paid":
                payment = PaymentState(
                    payment_id=str(data["id"]), amount=int(data.get("total_amount") or 0),
                    email=str(customer.get("email") or ""),
                    checkout_id=str(metadata.get("monetize_checkout") or ""),  # a one-time purchase completes it
                    **who,
                )  # fmt: skip
                return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, invoice=invoice, **common)
            if invoice is None:
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
        if kind in ("refund.created", "refund.updated"):
            # each refund keyed by its own id, against the order it refunds (order.refunded carries
            # only the order's cumulative refunded amount: the refund.* events name each refund)
            if data.get("status") != "succeeded":
                return NormalizedEvent(type=EventType.IGNORED, **common)
            payment = PaymentState(
                payment_id=f"refund:{data['id']}", amount=int(data.get("amount") or 0),
                currency=str(data.get("currency", "")).lower(),
                customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
                provider_customer_id=str(data.get("customer_id") or customer.get("id") or ""),
                reference=str(data.get("order_id") or ""),
                subscription_id=str(data.get("subscription_id") or ""),
            )  # fmt: skip
            return NormalizedEvent(type=EventType.REFUND_CREATED, payment=payment, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)

    def report_usage(self, report: UsageReport) -> str:
        """A Polar event (`POST /v1/events/ingest`) named by the meter's code, for our customer
        (Polar's external customer id), the quantity in `metadata.value` (a Polar meter sums that
        property); `external_id` is our report's identifier, which Polar de-duplicates on."""
        now = dt.datetime.now(dt.UTC)
        when = max(report.period_start, min(now, report.period_end - dt.timedelta(seconds=1)))
        event = {
            "name": report.meter,
            "external_customer_id": report.customer,
            "external_id": report.report_id,
            "timestamp": when.isoformat(),
            "metadata": {
                "value": report.quantity,
                "period_start": report.period_start.isoformat(),
                "period_end": report.period_end.isoformat(),
            },
        }
        if self.organization_id:
            event["organization_id"] = self.organization_id
        with self._sdk() as sdk:
            self._call(sdk.events.ingest, events=[event])
        return report.report_id


def _product_body(price: CatalogPrice, metadata: dict) -> dict:
    fixed = {
        "amount_type": "fixed",
        "price_amount": price.unit_amount,
        "price_currency": price.currency.lower(),
    }
    label = {"month": "monthly", "year": "yearly"}.get(price.interval, "one time")
    body = {
        "name": f"{price.tier_name} ({label})",
        "prices": [fixed],
        "metadata": metadata,
        "recurring_interval": price.interval if price.interval in RECURRING else None,
    }
    if price.tier_description:
        body["description"] = price.tier_description
    return body


def _price_ref(data: dict, metadata: dict, catalog: ProviderCatalog | None) -> str:
    """Our price code: the product the subscription is on now (a change moves it to another
    product but leaves the checkout's metadata alone), else the checkout's metadata."""
    product_id = data.get("product_id") or (data.get("product") or {}).get("id")
    if product_id and catalog is not None:
        mapping = catalog.mapping_for_external(
            provider="polar", mode=None, external_product_id=str(product_id)
        )
        if mapping:
            return mapping.price_code
    return str(metadata.get("monetize_price") or "")


def _error_message(error) -> str:
    detail = getattr(error, "detail", None)
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # HTTPValidationError: one line per field
        return "; ".join(
            f"{'.'.join(str(part) for part in getattr(item, 'loc', []))}: {getattr(item, 'msg', item)}"
            for item in detail
        )
    return str(error)[:500]
