"""The customer's membership pages: the checkout of a chosen price (seats for a per-seat price),
the plan page's buttons (cancel, undo, change, pause, resume, payment method), and the state the
plan page polls until the provider's webhook has landed."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.memberships.models import ENTITLED_STATUSES
from billing.memberships.portal import membership_fingerprint, membership_state
from billing.memberships.selectors import customer_of_user, membership_current
from billing.memberships.services import (
    MAX_SEATS,
    checkout_create,
    customer_for_user,
    membership_cancel,
    membership_change,
    membership_pause,
    membership_portal_url,
    membership_uncancel,
)
from billing.tiers.models import Price
from billing.tiers.selectors import tier_list
from billing.tiers.views import pricing_context
from kernel.errors import ApplicationError


def _seats(raw) -> int | None:
    try:
        seats = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return seats if 1 <= seats <= MAX_SEATS else None


@login_required
@require_http_methods(["GET", "POST"])
def start_checkout(request):
    """`/billing/checkout/?price=<code>` (where the pricing page and sign-up lead): a per-seat price
    asks for the number of seats first; any other goes straight to the provider's checkout."""
    code = (request.POST.get("price") or request.GET.get("price") or "").strip()
    price = Price.objects.filter(code=code, active=True).select_related("tier").first() if code else None
    if price is None:
        messages.error(
            request, "Choose a plan to subscribe to." if not code else f"There is no plan '{code}'."
        )
        return redirect("pricing")
    per_seat = price.model == "per_seat"
    error, seats = None, 1
    if per_seat:
        raw = request.POST.get("seats") if request.method == "POST" else request.GET.get("seats")
        if raw is None and request.method == "GET":
            return render(
                request, "billing/checkout.html", {"price": price, "seats": 1, "max_seats": MAX_SEATS}
            )
        seats = 1 if raw is None else _seats(raw)
        if seats is None:
            error = f"Enter a whole number of seats from 1 to {MAX_SEATS:,}."
            return render(
                request,
                "billing/checkout.html",
                {"price": price, "seats": raw, "max_seats": MAX_SEATS, "error": error},
                status=400,
            )
    customer = customer_for_user(user=request.user)
    if price.tier.creator_id is None:
        # the plan page waits until the plan it showed before (`pending`) has changed
        since = membership_fingerprint(membership=membership_current(customer=customer))
        success = "/account/plan/?" + urlencode({"checkout": "done", "pending": since})
        cancel = f"/pricing/?interval={price.interval}"
    else:
        # a creator's channel tier joins beside the plan: the fan's supporting page shows it
        success = "/account/supporting/?" + urlencode({"checkout": "done"})
        cancel = "/account/supporting/"
    try:
        checkout = checkout_create(
            customer=customer,
            price_code=price.code,
            quantity=seats,
            success_url=request.build_absolute_uri(success),
            cancel_url=request.build_absolute_uri(cancel),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("pricing")
    return redirect(checkout.url)


MEMBERSHIP_ACTIONS = {"cancel_now", "cancel_at_period_end", "uncancel", "change", "pause", "resume", "portal"}
DONE = {
    "cancel_now": "Canceled.",
    "cancel_at_period_end": "Your plan will not renew.",
    "uncancel": "Your plan will renew again.",
    "change": "Plan changed.",
    "pause": "Paused.",
    "resume": "Resumed.",
}


@login_required
@require_POST
def manage_membership(request):
    """The plan page's membership buttons. A provider's membership changes when its webhook lands:
    the plan page is told what it showed before (`pending`) and waits for something else."""
    action = request.POST.get("action")
    membership = membership_current(customer=customer_for_user(user=request.user))
    if action not in MEMBERSHIP_ACTIONS or membership is None:
        messages.error(
            request, "There is no membership to change." if membership is None else "Unknown action."
        )
        return redirect("plan")
    since = membership_fingerprint(membership=membership)
    try:
        if action == "portal":
            url = membership_portal_url(membership=membership)
            return redirect(request.build_absolute_uri(url) if url.startswith("/") else url)
        if action in {"cancel_now", "cancel_at_period_end"}:
            membership_cancel(membership=membership, at_period_end=action == "cancel_at_period_end")
        elif action == "uncancel":
            membership_uncancel(membership=membership)
        elif action == "change":
            seats = request.POST.get("seats")
            quantity = _seats(seats) if seats not in (None, "") else None
            if seats not in (None, "") and quantity is None:
                messages.error(request, f"Enter a whole number of seats from 1 to {MAX_SEATS:,}.")
                return redirect("plan")
            applies = membership_change(
                membership=membership, price_code=request.POST.get("price") or None, quantity=quantity
            )
            if applies == "at_period_end":
                messages.success(request, "Your plan changes at the end of the current period.")
                return redirect("plan")
        else:
            membership_pause(membership=membership, paused=action == "pause")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("plan")
    messages.success(request, DONE[action])
    return redirect("/account/plan/?" + urlencode({"pending": since}))


@login_required
@require_GET
def plan_state(request):
    """What the plan page polls: the digest of the membership it shows, and its state."""
    membership = membership_current(customer=customer_for_user(user=request.user))
    state = membership_state(membership=membership)
    response = JsonResponse(
        {
            "fingerprint": membership_fingerprint(membership=membership),
            "state": state["state"],
            "tier": membership.tier.name if membership is not None else None,
        }
    )
    response["Cache-Control"] = "no-store"
    return response


def _current_membership(request):
    """The signed-in customer's membership that a plan change (not a second checkout) applies to."""
    if not request.user.is_authenticated:
        return None
    customer = customer_of_user(user=request.user)  # reading the prices never makes a customer
    membership = membership_current(customer=customer) if customer is not None else None
    return membership if membership is not None and membership.status in ENTITLED_STATUSES else None


def pricing(request):
    """Public pricing page: public tiers, their price for the chosen interval (monthly or yearly,
    with what yearly saves), their other prices and features. Signed out, "Subscribe" goes through
    sign-up (or log-in) and back to the checkout of the chosen price."""
    interval = "year" if request.GET.get("interval") == "year" else "month"
    context = pricing_context(tier_list(public_only=True), interval=interval)
    return render(request, "billing/pricing.html", context | {"current": _current_membership(request)})
