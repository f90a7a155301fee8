"""What the pricing page shows of the catalog (the page itself is memberships': it knows the
visitor's plan)."""

from urllib.parse import urlencode

from billing.tiers.selectors import pricing_cards, tier_feature_value


def pricing_context(tiers, *, interval: str = "month") -> dict:
    """What the pricing template shows of `tiers` (public tiers with their active prices): a card
    per tier with its price for `interval`, and the feature comparison rows. The catalog editor's
    preview renders it too."""
    tiers = list(tiers)
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
    cards = pricing_cards(tiers=tiers, interval=interval)
    for card in cards["cards"]:
        if card["price"] is not None:
            card["next"] = urlencode({"next": f"/billing/checkout/?price={card['price'].code}"})
    return {"tiers": tiers, "rows": rows, "interval": interval, **cards}
