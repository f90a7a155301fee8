from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.memberships.selectors import membership_current
from billing.memberships.services import (
    checkout_create,
    customer_for_user,
    membership_cancel,
    membership_change,
    membership_pause,
    membership_portal_url,
)
from kernel.errors import ApplicationError


@login_required
@require_POST
def start_checkout(request):
    """The pricing page's "Subscribe" button: a checkout for the signed-in customer."""
    customer = customer_for_user(user=request.user)
    try:
        checkout = checkout_create(
            customer=customer,
            price_code=request.POST.get("price") or None,
            success_url=request.build_absolute_uri("/account/plan/?checkout=done"),
            cancel_url=request.build_absolute_uri("/pricing/"),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("pricing")
    return redirect(checkout.url)


MEMBERSHIP_ACTIONS = {"cancel_now", "cancel_at_period_end", "change", "pause", "resume", "portal"}


@login_required
@require_POST
def manage_membership(request):
    """The plan page's membership buttons: cancel, change plan, pause, resume, provider portal."""
    action = request.POST.get("action")
    membership = membership_current(customer=customer_for_user(user=request.user))
    if action not in MEMBERSHIP_ACTIONS or membership is None:
        messages.error(
            request, "There is no membership to change." if membership is None else "Unknown action."
        )
        return redirect("plan")
    try:
        if action == "portal":
            url = membership_portal_url(membership=membership)
            return redirect(request.build_absolute_uri(url) if url.startswith("/") else url)
        if action in {"cancel_now", "cancel_at_period_end"}:
            membership_cancel(membership=membership, at_period_end=action == "cancel_at_period_end")
        elif action == "change":
            applies = membership_change(membership=membership, price_code=request.POST.get("price") or None)
            if applies == "at_period_end":
                messages.success(request, "Your plan changes at the end of the current period.")
        else:
            membership_pause(membership=membership, paused=action == "pause")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("plan")
    messages.success(request, "Requested; your plan updates as soon as the provider confirms it.")
    return redirect("plan")
