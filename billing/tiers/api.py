from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from billing.tiers.selectors import tier_feature_value, tier_list
from kernel.api.pagination import page_schema, single_page
from kernel.decimals import decimal_text


def tier_as_dict(tier) -> dict:
    return {
        "code": tier.code,
        "name": tier.name,
        "description": tier.description,
        "public": tier.is_public,
        "default": tier.is_default,
        "prices": [
            {
                "code": p.code or None,
                "currency": p.currency,
                "unit_amount": p.unit_amount,
                "unit_amount_decimal": decimal_text(p.unit_amount_decimal),
                "interval": p.interval,
                "model": p.model,
                "tiers": p.tiers or None,
                "package_size": p.package_size,
                "package_rounding": p.package_rounding,
                "meter": p.meter or None,
                "trial_days": p.trial_days,
            }
            for p in tier.active_prices
        ],
        "features": [
            {
                "code": tf.feature.code,
                "name": tf.feature.name,
                "kind": tf.feature.kind,
                "unit": tf.feature.unit,
                "value": tier_feature_value(tf),
            }
            for tf in tier.tier_features.all()
        ],
    }


class TierListView(APIView):
    """The catalog: tiers with their active prices and features (`?all=true` includes private tiers)."""

    @extend_schema(
        operation_id="tiers_list",
        parameters=[OpenApiParameter("all", bool, description="Include private tiers.")],
        responses=page_schema("TierPage", serializers.ListField(child=serializers.DictField())),
    )
    def get(self, request):
        include_private = request.query_params.get("all") in {"1", "true", "yes"}
        return single_page([tier_as_dict(t) for t in tier_list(public_only=not include_private)])
