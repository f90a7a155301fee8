from django.db.models import Prefetch, QuerySet

from billing.tiers.exceptions import TierNotFound
from billing.tiers.models import Price, Tier, TierFeature


def tier_list(*, public_only: bool = True) -> QuerySet[Tier]:
    """The platform's tiers (not creators' channel tiers) with their active prices and features,
    in display order."""
    qs = (
        Tier.objects.prefetch_related(
            Prefetch(
                "prices",
                queryset=Price.objects.filter(active=True).order_by("unit_amount", "id"),
                to_attr="active_prices",
            ),
            Prefetch(
                "tier_features",
                queryset=TierFeature.objects.select_related("feature").order_by("feature__code"),
            ),
        )
        .filter(creator__isnull=True)
        .order_by("sort_order", "id")
    )
    return qs.filter(is_public=True) if public_only else qs


def tier_get(*, code: str) -> Tier:
    tier = Tier.objects.filter(code=code).first()
    if tier is None:
        raise TierNotFound(f"No tier '{code}'.", details={"tier": code})
    return tier


def tier_feature_value(tf: TierFeature):
    """The value as the API and pages show it: true/false, a number, "unlimited" or a rate."""
    kind = tf.feature.kind
    if not tf.enabled:
        return False
    if kind == "boolean":
        return True
    if kind == "rate":
        return {"limit": tf.rate_limit, "window_seconds": tf.rate_window_seconds}
    return "unlimited" if tf.limit_value is None else tf.limit_value


def _subscribable(price: Price) -> bool:
    return bool(price.code) and price.interval != "one_time" and price.model not in ("graduated", "volume")


def pricing_cards(*, tiers: list[Tier], interval: str) -> dict:
    """The pricing page's cards for `interval` ("month" | "year"): per tier its price at that
    interval (else its other recurring price), the tier's other prices, and what paying yearly saves
    against twelve monthly payments in the same currency and model (minor units, and a whole
    percent rounded down). `yearly_saving_percent` is the best saving of any tier (for the toggle)."""
    cards, best = [], 0
    for tier in tiers:
        recurring = [p for p in tier.active_prices if _subscribable(p) and p.interval in ("month", "year")]
        monthly = next((p for p in recurring if p.interval == "month"), None)
        yearly = next(
            (
                p
                for p in recurring
                if p.interval == "year"
                and (monthly is None or (p.currency == monthly.currency and p.model == monthly.model))
            ),
            None,
        )
        saving = saving_percent = 0
        if monthly and yearly and monthly.unit_amount > 0:
            saving = max(0, monthly.unit_amount * 12 - yearly.unit_amount)
            saving_percent = saving * 100 // (monthly.unit_amount * 12)
            best = max(best, saving_percent)
        chosen = (yearly or monthly) if interval == "year" else (monthly or yearly)
        cards.append(
            {
                "tier": tier,
                "price": chosen,
                "others": [p for p in tier.active_prices if p not in (monthly, yearly)],
                "saving": saving if chosen is yearly else 0,
                "saving_percent": saving_percent if chosen is yearly else 0,
                "monthly_equivalent": yearly.unit_amount // 12 if chosen is yearly and yearly else None,
            }
        )
    intervals = {p.interval for t in tiers for p in t.active_prices if _subscribable(p)}
    has_both = {"month", "year"} <= intervals
    return {"cards": cards, "yearly_saving_percent": best, "has_toggle": has_both}
