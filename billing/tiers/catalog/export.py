"""The stored catalog (platform tiers, features, sections) as the import's YAML: importing the
export changes nothing."""

from __future__ import annotations

import yaml

from billing.tiers.catalog.parse import WINDOW_NAMES
from billing.tiers.catalog.sections import _SECTIONS
from billing.tiers.models import Feature, FeatureKind, PackageRounding, PricingModel, Tier, TierFeature
from kernel.decimals import decimal_text


def _feature_value(tf: TierFeature, kind: str):
    if not tf.enabled:
        return False
    if kind == FeatureKind.BOOLEAN:
        return True
    if kind == FeatureKind.RATE:
        window = WINDOW_NAMES.get(tf.rate_window_seconds)
        return f"{tf.rate_limit}/{window}" if window else False
    return "unlimited" if tf.limit_value is None else tf.limit_value


def catalog_export() -> str:
    """The active catalog in the import format (re-importing it changes nothing)."""
    features = {
        f.code: {
            k: v
            for k, v in {"name": f.name, "kind": f.kind, "unit": f.unit, "description": f.description}.items()
            if v
        }
        for f in Feature.objects.all()
    }
    kinds = {code: spec["kind"] for code, spec in features.items()}
    tiers = []
    for tier in (
        Tier.objects.filter(creator__isnull=True)  # creators' channel tiers are theirs, not the catalog's
        .prefetch_related("prices", "tier_features__feature")
        .order_by("sort_order", "id")
    ):
        item = {"code": tier.code, "name": tier.name}
        if tier.description:
            item["description"] = tier.description
        item.update({"public": tier.is_public, "default": tier.is_default, "sort": tier.sort_order})
        if tier.credit_allowance is not None:
            credits = tier.credit_allowance / 1_000_000
            item["credits_per_period"] = int(credits) if credits == int(credits) else credits
        prices = []
        for price in sorted((p for p in tier.prices.all() if p.active), key=lambda p: p.id):
            entry = {"code": price.code} if price.code else {}
            entry.update(
                {"unit_amount": price.unit_amount, "currency": price.currency, "interval": price.interval}
            )
            if price.model != PricingModel.FLAT:
                entry["model"] = price.model
            if price.tiers:
                entry["tiers"] = price.tiers
            if price.unit_amount_decimal is not None:
                entry["unit_amount_decimal"] = decimal_text(price.unit_amount_decimal)
            if price.package_size:
                entry["package_size"] = price.package_size
            if price.package_rounding != PackageRounding.UP:
                entry["package_rounding"] = price.package_rounding
            if price.meter:
                entry["meter"] = price.meter
            if price.trial_days:
                entry["trial_days"] = price.trial_days
            prices.append(entry)
        if prices:
            item["prices"] = prices
        item["features"] = {
            tf.feature.code: _feature_value(tf, kinds[tf.feature.code])
            for tf in sorted(tier.tier_features.all(), key=lambda tf: tf.feature.code)
        }
        tiers.append(item)
    document = {"features": features, "tiers": tiers}
    for section in _SECTIONS.values():
        if value := section.export():
            document[section.key] = value
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
