"""The ProviderCatalog the registry hands to adapters: our prices and provider product mappings as
dataclasses, so adapters never touch our models."""

from __future__ import annotations

from billing.providers.base import CatalogPrice, ProductMapping
from billing.providers.models import ProviderDiscount, ProviderProduct
from billing.tiers.models import Price


def _price(price: Price) -> CatalogPrice:
    return CatalogPrice(
        id=price.pk,
        code=price.code,
        model=price.model,
        unit_amount=price.unit_amount,
        currency=price.currency,
        interval=price.interval,
        active=price.active,
        tier_name=price.tier.name,
        tier_description=price.tier.description,
    )


def _mapping(row: ProviderProduct) -> ProductMapping:
    return ProductMapping(
        price_code=row.price.code,
        external_product_id=row.external_product_id,
        external_price_id=row.external_price_id,
    )


class DatabaseCatalog:
    def price(self, code: str, *, active_only: bool = True) -> CatalogPrice | None:
        prices = Price.objects.filter(code=code).select_related("tier")
        price = (
            prices.filter(active=True).first() if active_only else prices.order_by("-active", "-id").first()
        )
        return _price(price) if price else None

    def mapping(self, *, provider: str, mode: str, price_code: str) -> ProductMapping | None:
        row = (
            ProviderProduct.objects.filter(
                provider=provider, mode=mode, price__code=price_code, price__active=True
            )
            .select_related("price")
            .order_by("-id")
            .first()
        )
        return _mapping(row) if row else None

    def mapping_store(
        self,
        *,
        provider: str,
        mode: str,
        price: CatalogPrice,
        external_product_id: str,
        external_price_id: str,
    ) -> ProductMapping:
        key = {"provider": provider, "mode": mode, "price_id": price.id}
        ProviderProduct.objects.bulk_create(
            [
                ProviderProduct(
                    **key, external_product_id=external_product_id, external_price_id=external_price_id
                )
            ],
            ignore_conflicts=True,
        )
        return _mapping(ProviderProduct.objects.select_related("price").get(**key))

    def mapping_for_external(
        self, *, provider: str, mode: str | None, external_product_id: str = "", external_price_id: str = ""
    ) -> ProductMapping | None:
        if not (external_product_id or external_price_id):
            return None
        rows = ProviderProduct.objects.filter(provider=provider).select_related("price")
        if mode is not None:
            rows = rows.filter(mode=mode)
        if external_product_id:
            rows = rows.filter(external_product_id=external_product_id)
        if external_price_id:
            rows = rows.filter(external_price_id=external_price_id)
        row = rows.order_by("-price__active", "-id").first()
        return _mapping(row) if row else None

    def discount(self, *, provider: str, mode: str, coupon_code: str, months: int) -> str | None:
        return (
            ProviderDiscount.objects.filter(
                provider=provider, mode=mode, coupon_code=coupon_code, months=months
            )
            .values_list("external_id", flat=True)
            .first()
        )

    def discount_store(
        self, *, provider: str, mode: str, coupon_code: str, months: int, external_id: str
    ) -> str:
        key = {"provider": provider, "mode": mode, "coupon_code": coupon_code, "months": months}
        ProviderDiscount.objects.bulk_create(
            [ProviderDiscount(**key, external_id=external_id)], ignore_conflicts=True
        )
        return ProviderDiscount.objects.values_list("external_id", flat=True).get(**key)
