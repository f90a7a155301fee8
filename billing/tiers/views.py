from django.shortcuts import render

from billing.tiers.selectors import tier_feature_value, tier_list


def pricing(request):
    """Public pricing page: public tiers, their active prices and features."""
    tiers = list(tier_list(public_only=True))
    feature_rows = {}
    for tier in tiers:
        for tf in tier.tier_features.all():
            feature_rows.setdefault(tf.feature.code, {"feature": tf.feature, "values": {}})["values"][
                tier.pk
            ] = tier_feature_value(tf)
    rows = [
        {"feature": row["feature"], "cells": [row["values"].get(tier.pk, False) for tier in tiers]}
        for row in sorted(feature_rows.values(), key=lambda r: r["feature"].name)
    ]
    return render(request, "billing/pricing.html", {"tiers": tiers, "rows": rows})
