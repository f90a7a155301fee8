"""Our catalog at Stripe: a price found by its lookup_key (= our price code) or created once (its
product first), and a coupon under our id, created once and refused when Stripe holds other terms
under it. A mixin of StripeProvider, which provides `_call()`."""

from __future__ import annotations

from decimal import Decimal

from billing.providers.base import CouponConflict, CouponNotSupported, CouponTerms, ProviderError


class StripeCatalog:
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

    def _coupon_id(self, client, coupon: CouponTerms, *, interval: str) -> str:
        """Our coupon at Stripe: `monetize-<code>` (a repeating one on a yearly price counts its periods
        in months and is `monetize-<code>-<months>m`), retrieved by that id or created once (keyed
        the same). One found with other terms (another tenant's coupon of that code on a shared
        Stripe account) is refused rather than given."""
        months = coupon.months(interval)
        suffix = f"-{months}m" if months is not None and interval == "year" else ""
        coupon_id = f"monetize-{coupon.code}{suffix}"
        params = {"id": coupon_id, "duration": coupon.duration, "name": coupon.code,
                  "metadata": {"monetize_coupon": coupon.code}}  # fmt: skip
        if coupon.percent_off is not None:
            params["percent_off"] = coupon.percent_text
        else:
            params |= {"amount_off": coupon.amount_off, "currency": coupon.currency}
        if months is not None:
            params["duration_in_months"] = months
        found = self._call(_coupon_or_none, client, coupon_id)
        if found is None:
            try:
                found = self._call(
                    client.v1.coupons.create, params=params,
                    options={"idempotency_key": f"coupon-{coupon.code}{suffix}"},
                )  # fmt: skip
            except ProviderError as exc:
                # another checkout created it between our look and our create (past the key's 24 h)
                if exc.details.get("stripe_code") != "resource_already_exists":
                    raise
                found = self._call(client.v1.coupons.retrieve, coupon_id)
        same = (
            str(getattr(found, "duration", "")) == coupon.duration
            and getattr(found, "duration_in_months", None) == months
            and (
                _decimal(getattr(found, "percent_off", None)) == coupon.percent_off
                if coupon.percent_off is not None
                else (getattr(found, "amount_off", None), getattr(found, "currency", None))
                == (coupon.amount_off, coupon.currency)
            )
        )
        if not same:
            raise CouponConflict(
                f"Stripe holds a coupon '{coupon_id}' with other terms than ours; it is not given.",
                details={"coupon": coupon.code, "stripe_coupon": coupon_id},
            )
        return coupon_id

    @staticmethod
    def _refuse_coupon(coupon: CouponTerms | None, currency: str) -> None:
        if coupon is None:
            return
        coupon.refuse_other_currency(currency=currency, provider="Stripe")
        if coupon.percent_off is not None and coupon.percent_off != round(coupon.percent_off, 2):
            raise CouponNotSupported(
                f"Coupon '{coupon.code}' is {coupon.percent_text}% off: Stripe takes at most two decimals.",
                details={"coupon": coupon.code, "provider": "stripe"},
            )


def _coupon_or_none(client, coupon_id: str):
    """The Stripe coupon of that id, or None when Stripe has none (404)."""
    import stripe

    try:
        return client.v1.coupons.retrieve(coupon_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))
