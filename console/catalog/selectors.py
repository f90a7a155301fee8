"""Reads of the catalog editor: the platform's tiers (creators' channel tiers are theirs), the
features and meters a form offers, one price; coupons and tax rates."""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.http import Http404

from billing.discounts.exceptions import CouponNotFound
from billing.discounts.models import CODE_PATTERN, Coupon
from billing.discounts.selectors import code_normalize, coupon_get, coupon_list
from billing.invoicing.models import TaxRate
from billing.invoicing.taxes import TaxRateNotFound, tax_rate_get, tax_rate_list
from billing.metering.models import Meter
from billing.tiers.models import Feature, Price, PricingModel, Tier
from billing.tiers.selectors import tier_list


def catalog_tiers() -> list[Tier]:
    """Every platform tier, public or not, with its active prices and features (two prefetches)."""
    return list(tier_list(public_only=False))


def catalog_features() -> list[Feature]:
    return list(Feature.objects.order_by("code"))


def catalog_meters() -> list[Meter]:
    return list(Meter.objects.order_by("code"))


def catalog_price_get(*, price_id) -> Price:
    """A platform tier's price by id (404 for an unknown id, a creator's price or a bad number)."""
    try:
        price_id = int(price_id)
    except (TypeError, ValueError):
        raise Http404 from None
    price = (
        Price.objects.select_related("tier").filter(pk=price_id, tier__creator__isnull=True).first()
        if 0 < price_id < 2**63
        else None
    )
    if price is None:
        raise Http404
    return price


def catalog_price_unit(*, price: Price) -> str:
    """What one of the price's quantity is, singular: its meter's unit ("minute"), a seat, or a unit."""
    if price.meter:
        unit = Meter.objects.filter(code=price.meter).values_list("unit", flat=True).first()
        if unit:
            return unit
    return "seat" if price.model == PricingModel.PER_SEAT else "unit"


def catalog_coupons() -> QuerySet[Coupon]:
    """Every coupon, active or not, with its tiers (one prefetch: a page's rows in two queries)."""
    return coupon_list()


def catalog_coupon_get(*, code: str) -> Coupon:
    """A coupon by code (404 for a code this tenant lacks, or one that is no code at all)."""
    if not re.fullmatch(CODE_PATTERN, code_normalize(code)):
        raise Http404
    try:
        return coupon_get(code=code)
    except CouponNotFound:
        raise Http404 from None


def catalog_tax_rates() -> QuerySet[TaxRate]:
    return tax_rate_list()


def catalog_tax_rate_get(*, tax_rate_id) -> TaxRate:
    try:
        return tax_rate_get(tax_rate_id=tax_rate_id)
    except TaxRateNotFound:
        raise Http404 from None
