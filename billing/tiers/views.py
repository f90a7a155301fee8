from urllib.parse import urlencode

from django.shortcuts import render

from billing.tiers.selectors import pricing_cards, tier_feature_value, tier_list


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


def _current_membership(request):
    """The signed-in customer's membership that a plan change (not a second checkout) applies to."""
    if not request.user.is_authenticated:
        return None
    from billing.memberships.models import ENTITLED_STATUSES
    from billing.memberships.selectors import membership_current
    from billing.memberships.services import customer_for_user

    membership = membership_current(customer=customer_for_user(user=request.user))
    return membership if membership is not None and membership.status in ENTITLED_STATUSES else None


def pricing(request):
    """Public pricing page: public tiers, their price for the chosen interval (monthly or yearly,
    with what yearly saves), their other prices and features. Signed out, "Subscribe" goes through
    sign-up (or log-in) and back to the checkout of the chosen price."""
    interval = "year" if request.GET.get("interval") == "year" else "month"
    context = pricing_context(tier_list(public_only=True), interval=interval)
    return render(request, "billing/pricing.html", context | {"current": _current_membership(request)})
