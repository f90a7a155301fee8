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
