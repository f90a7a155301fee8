"""Our coupons as discounts of the providers that run their own subscriptions and keep discounts as
objects of their own (Polar's discounts, Lemon Squeezy's discount codes): the request bodies, what
each provider cannot express (refused before any call), and the create-once-then-reuse through the
catalog's `ProviderDiscount` rows. Stripe's coupons are found by an id we choose (billing/providers/stripe.py).

A discount is keyed by coupon code and its length in months (a repeating coupon on a yearly price
runs n×12 months, so it is another discount than on a monthly price); our coupon terms never change,
so a stored discount never goes stale.
"""

from __future__ import annotations

import re

from billing.providers.base import CouponNotSupported, CouponTerms

LEMONSQUEEZY_CODE = re.compile(r"^[A-Z0-9]{3,256}$")


def polar_refuse(coupon: CouponTerms | None, *, currency: str) -> None:
    """Polar takes a percentage in whole basis points, an amount off in the price's currency."""
    if coupon is None:
        return
    coupon.refuse_other_currency(currency=currency, provider="Polar")
    if coupon.percent_off is not None and coupon.percent_off * 100 != int(coupon.percent_off * 100):
        raise CouponNotSupported(
            f"Coupon '{coupon.code}' is {coupon.percent_text}% off: Polar takes whole basis points "
            "(at most two decimals).",
            details={"coupon": coupon.code, "provider": "polar"},
        )


def polar_discount_body(coupon: CouponTerms, *, interval: str, metadata: dict) -> dict:
    body: dict = {"name": coupon.code, "duration": coupon.duration, "metadata": metadata}
    if coupon.percent_off is not None:
        body |= {"type": "percentage", "basis_points": int(coupon.percent_off * 100)}
    else:
        body |= {"type": "fixed", "amount": coupon.amount_off, "currency": coupon.currency}
    months = coupon.months(interval)
    if months is not None:
        body["duration_in_months"] = months
    return body


def polar_discount_matches(discount, body: dict) -> bool:
    """A discount found at Polar says what we would create (a tenant sharing the organization, or
    a hand-made one carrying our metadata, is never given in its place). Its length in months is in
    the metadata we match it by: polar-sdk reads a repeating discount as its once/forever shape."""
    keys = ["duration", "basis_points", "amount", "currency"]
    return all(getattr(discount, key, None) == body.get(key) for key in keys)


def lemonsqueezy_code(coupon: CouponTerms, *, interval: str) -> str:
    """The discount code at Lemon Squeezy (upper-case letters and digits, 3 to 256): our code, with
    `<n>M` after it for a repeating coupon on a yearly price (another discount: n×12 months)."""
    months = coupon.months(interval)
    return coupon.code + (f"{months}M" if months is not None and interval == "year" else "")


def lemonsqueezy_refuse(coupon: CouponTerms | None, *, currency: str, interval: str) -> None:
    """Lemon Squeezy takes a whole percentage, an amount off in the store's (the price's) currency,
    and codes of letters and digits only."""
    if coupon is None:
        return
    coupon.refuse_other_currency(currency=currency, provider="Lemon Squeezy")
    details = {"coupon": coupon.code, "provider": "lemonsqueezy"}
    if coupon.percent_off is not None and coupon.percent_off != int(coupon.percent_off):
        raise CouponNotSupported(
            f"Coupon '{coupon.code}' is {coupon.percent_text}% off: Lemon Squeezy takes whole percentages.",
            details=details,
        )
    if not LEMONSQUEEZY_CODE.match(lemonsqueezy_code(coupon, interval=interval)):
        raise CouponNotSupported(
            f"Coupon '{coupon.code}': Lemon Squeezy discount codes are letters and digits only (3 or more).",
            details=details,
        )


def lemonsqueezy_discount_attributes(coupon: CouponTerms, *, interval: str) -> dict:
    attributes: dict = {
        "name": coupon.code,
        "code": lemonsqueezy_code(coupon, interval=interval),
        "duration": coupon.duration,
    }
    if coupon.percent_off is not None:
        attributes |= {"amount": int(coupon.percent_off), "amount_type": "percent"}
    else:
        attributes |= {"amount": coupon.amount_off, "amount_type": "fixed"}
    months = coupon.months(interval)
    if months is not None:
        attributes["duration_in_months"] = months
    return attributes


def lemonsqueezy_discount(adapter, coupon: CouponTerms, *, interval: str) -> str:
    """The code of our coupon's Lemon Squeezy discount in the adapter's store: our row, else created
    (`POST /discounts`), else, when the store has the code already (created by an attempt whose
    transaction rolled back), that discount found by its code, if its terms are ours."""
    from billing.providers.base import CouponConflict, ProviderError

    months = coupon.months(interval) or 0
    key = {"provider": adapter.name, "mode": adapter.mode, "coupon_code": coupon.code, "months": months}
    attributes = lemonsqueezy_discount_attributes(coupon, interval=interval)
    if adapter.catalog.discount(**key):
        return attributes["code"]
    body = {"data": {"type": "discounts", "attributes": attributes,
                     "relationships": {"store": {"data": {"type": "stores", "id": adapter.store_id}}}}}  # fmt: skip
    try:
        created = adapter._request("POST", "/discounts", body=body).get("data") or {}
    except ProviderError as exc:
        if exc.details.get("status") != 422:
            raise
        created = _lemonsqueezy_find(adapter, attributes["code"])
        if created is None:
            raise
        terms = ["amount", "amount_type", "duration"] + (["duration_in_months"] if months else [])
        found = created.get("attributes") or {}
        if any(found.get(term) != attributes[term] for term in terms):
            raise CouponConflict(
                f"Lemon Squeezy holds a discount code '{attributes['code']}' with other terms than our "
                f"coupon '{coupon.code}'; it is not given.",
                details={"coupon": coupon.code, "lemonsqueezy_discount": str(created.get("id"))},
            ) from exc
    adapter.catalog.discount_store(**key, external_id=str(created.get("id") or ""))
    return attributes["code"]


def _lemonsqueezy_find(adapter, code: str, *, pages: int = 20) -> dict | None:
    """The store's discount with that code (its discounts, 100 a page)."""
    for number in range(1, pages + 1):
        path = f"/discounts?filter[store_id]={adapter.store_id}&page[size]=100&page[number]={number}"
        document = adapter._request("GET", path)
        for discount in document.get("data") or []:
            if (discount.get("attributes") or {}).get("code") == code:
                return discount
        last = ((document.get("meta") or {}).get("page") or {}).get("lastPage") or 1
        if number >= last:
            return None
    return None
