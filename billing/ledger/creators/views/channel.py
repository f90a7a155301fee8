"""A creator's public channel page (`/channels/<handle>/`, no login): their published tiers with
their prices, a "Join" per price that starts the fan's checkout at the tenant's provider (the same
checkout as the pricing page's, back to the fan's supporting page), and a tip form (a one-time
payment through the provider's hosted checkout). An unknown handle is the site's 404 page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.ledger.creators.exceptions import CreatorNotFound
from billing.ledger.creators.forms import TipForm
from billing.ledger.creators.selectors import channel_tiers, creator_get, fan_live_tier_ids
from billing.ledger.creators.tips import tip_checkout_create
from kernel.errors import ApplicationError


def _creator(handle: str):
    try:
        return creator_get(handle=handle)
    except CreatorNotFound:
        raise Http404("No such channel.") from None


def _tip_form(request, tiers, data=None) -> TipForm:
    tenant = request.tenant
    currency = next((tier.active_prices[0].currency for tier in tiers), "usd")
    initial = {"item": (request.GET.get("item") or "")[:255]}
    return TipForm(
        data,
        initial=initial,
        currency=currency,
        low=int(tenant.tip_min_amount),
        high=int(tenant.tip_max_amount),
    )


def _page(request, creator, *, tiers, tip_form, status=200):
    context = {
        "creator": creator,
        "tiers": tiers,
        "joined": fan_live_tier_ids(user=request.user, creator=creator),
        "tip_form": tip_form,
        "login_url": f"{settings.LOGIN_URL}?{urlencode({'next': request.get_full_path()})}",
        "is_owner": request.user.is_authenticated and creator.user_id == request.user.pk,
    }
    return render(request, "creators/channel.html", context, status=status)


@require_GET
def channel(request, handle: str):
    creator = _creator(handle)
    tiers = channel_tiers(creator=creator)
    return _page(request, creator, tiers=tiers, tip_form=_tip_form(request, tiers))


def _back(request, creator) -> str:
    return request.build_absolute_uri(reverse("channel", args=[creator.handle]))


@require_http_methods(["GET", "POST"])
@login_required
def channel_join(request, handle: str):
    """`/channels/<handle>/join/?price=<code>` (a GET too, so that a visitor comes back here after
    logging in): the fan's checkout of one of the creator's published prices."""
    from billing.memberships.services import checkout_create, customer_for_user

    creator = _creator(handle)
    code = (request.POST.get("price") or request.GET.get("price") or "").strip()
    prices = {price.code: price for tier in channel_tiers(creator=creator) for price in tier.active_prices}
    if code not in prices:
        messages.error(request, f"{creator.display_name} has no tier '{code}' to join: choose one below.")
        return redirect("channel", handle=creator.handle)
    try:
        checkout = checkout_create(
            customer=customer_for_user(user=request.user),
            price_code=code,
            # as the pricing page's checkout of a channel tier: the supporting page thanks the fan
            success_url=request.build_absolute_uri("/account/supporting/?checkout=done"),
            cancel_url=_back(request, creator),
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("channel", handle=creator.handle)
    return redirect(checkout.url)


@require_POST
@login_required
def channel_tip(request, handle: str):
    """The tip form: a one-time payment to the creator at the provider's hosted checkout."""
    from billing.memberships.services import customer_for_user

    creator = _creator(handle)
    tiers = channel_tiers(creator=creator)
    form = _tip_form(request, tiers, data=request.POST)
    if not form.is_valid():
        return _page(request, creator, tiers=tiers, tip_form=form, status=400)
    try:
        tip = tip_checkout_create(
            creator=creator,
            customer=customer_for_user(user=request.user),
            amount=form.cleaned_data["amount"],
            currency=form.currency,
            item_id=form.cleaned_data.get("item") or "",
            success_url=request.build_absolute_uri(
                "/account/supporting/?" + urlencode({"tipped": creator.handle})
            ),
            cancel_url=_back(request, creator),
        )
    except ApplicationError as error:
        form.add_error("amount" if error.code == "tip_amount_out_of_range" else None, error.message)
        return _page(request, creator, tiers=tiers, tip_form=form, status=error.status_code)
    return redirect(tip.url)
