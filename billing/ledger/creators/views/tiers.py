"""The creator's channel tiers, from their dashboard: a new tier (`/creator/tiers/new/`), a tier's
form (`/creator/tiers/<code>/`: name, benefits, prices) and its deletion (a POST behind the
layout's confirmation). Every change goes through the creators' services, with the API's rules: a
refusal is shown beside the field it names and changes nothing; a new amount is a new price."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from billing.ledger.creators.exceptions import CreatorError, CreatorTierNotFound
from billing.ledger.creators.forms import TierForm
from billing.ledger.creators.selectors import creator_tier_get, creator_tiers
from billing.ledger.creators.services import (
    creator_for_user,
    creator_tier_create,
    creator_tier_delete,
    creator_tier_update,
)
from kernel.money import format_amount

DASHBOARD_TIERS = "/creator/#tiers"


def _own_tier(creator, code: str):
    """A published tier of this creator's (another creator's, or an unknown one, is a 404)."""
    try:
        tier = creator_tier_get(creator=creator, code=code)
    except CreatorTierNotFound:
        raise Http404("No such tier.") from None
    [tier] = [t for t in creator_tiers(creator=creator) if t.pk == tier.pk]
    return tier


def _price_words(price) -> str:
    return f"{format_amount(price.unit_amount, price.currency)} a {price.interval}"


@require_http_methods(["GET", "POST"])
@role_required(Role.CREATOR)
def tier_new(request):
    creator = creator_for_user(user=request.user)
    existing = next(iter(creator_tiers(creator=creator)), None)
    currency = next((p.currency for p in existing.active_prices), "usd") if existing else "usd"
    form = TierForm(request.POST or None, currency=currency)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            tier = creator_tier_create(
                creator=creator,
                code=data["code"],
                name=data["name"],
                description=data.get("description") or "",
                amount=data["monthly"],
                currency=data["currency"],
                yearly_amount=data.get("yearly"),
            )
        except CreatorError as error:
            form.errors_from(error)
        else:
            messages.success(request, f"{tier.name} is published: fans can join it from your channel page.")
            return redirect(DASHBOARD_TIERS)
    status = 400 if request.method == "POST" else 200
    return render(request, "creators/tier_form.html", {"form": form, "creator": creator}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.CREATOR)
def tier_edit(request, code: str):
    creator = creator_for_user(user=request.user)
    tier = _own_tier(creator, code)
    form = TierForm(request.POST or None, tier=tier)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            tier, added = creator_tier_update(
                creator=creator,
                code=tier.code,
                name=data["name"],
                description=data.get("description") or "",
                amounts={"month": data.get("monthly"), "year": data.get("yearly")},
            )
        except CreatorError as error:
            form.errors_from(error)
        else:
            news = "; ".join(f"new price {_price_words(price)}" for price in added)
            kept = " (members who joined before keep theirs)" if added else ""
            messages.success(request, f"{tier.name} saved" + (f": {news}{kept}." if news else "."))
            return redirect(DASHBOARD_TIERS)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "creator": creator, "tier": tier}
    return render(request, "creators/tier_form.html", context, status=status)


@require_POST
@role_required(Role.CREATOR)
def tier_delete(request, code: str):
    creator = creator_for_user(user=request.user)
    tier = _own_tier(creator, code)
    try:
        creator_tier_delete(creator=creator, code=tier.code)
    except CreatorError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{tier.name} is deleted: fans can no longer join it.")
    return redirect(DASHBOARD_TIERS)
