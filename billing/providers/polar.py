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

import logging

from billing.providers._common import timestamp
from billing.providers.base import (
    CatalogPrice,
    CheckoutRequest,
    CheckoutSession,
    CouponConflict,
    CouponTerms,
    ProductMapping,
    ProviderCatalog,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RefundResult,
)
from billing.providers.discounts import polar_discount_body, polar_discount_matches, polar_refuse
from billing.providers.polar_webhooks import PolarWebhooks

logger = logging.getLogger(__name__)

RECURRING = ("month", "year")
PRORATION = "prorate"  # the change applies now; the difference lands on the next invoice


class PolarRequestUnsupported(ProviderError):
    """What we were asked cannot be sold through Polar as configured (refused before any call)."""

    code = "provider_request_unsupported"
    status_code = 422


class PolarProvider(PolarWebhooks):
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
        """A Polar refund of the order `payment_id`. Polar takes no idempotency key: the refund carries
        ours in its metadata (`monetize_refund`) and a retry finds it among the order's refunds
        instead of refunding twice. Its `refund.created` webhook names it `refund:<id>`."""
        with self._sdk() as sdk:
            listed = self._call(sdk.refunds.list, order_id=payment_id, limit=100).items
            ours = [r for r in listed if (r.metadata or {}).get("monetize_refund") == idempotency_key]
            refund = ours[0] if ours else self._call(
                sdk.refunds.create, order_id=payment_id, amount=amount, reason=POLAR_REASONS.get(reason, "other"),
                metadata={"monetize_refund": idempotency_key},
            )  # fmt: skip
        if refund.status in ("failed", "canceled"):
            raise ProviderError(
                f"Polar did not refund order {payment_id} (refund {refund.status}).", code="refund_failed"
            )
        return RefundResult(
            refund_id=f"refund:{refund.id}",
            amount=int(refund.amount or amount),
            status="pending" if refund.status == "pending" else "succeeded",
        )

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


# our credit-note reasons as Polar's refund reasons
POLAR_REASONS = {
    "duplicate": "duplicate",
    "fraudulent": "fraudulent",
    "order_change": "customer_request",
    "product_unsatisfactory": "satisfaction_guarantee",
    "other": "other",
}


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
