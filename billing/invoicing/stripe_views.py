"""Stripe engine-mode checkout pages on the tenant site: ours opens Stripe's setup-mode Checkout
Session; Stripe brings the customer back here once the card is saved."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from billing.invoicing.engine.stripe import (
    checkout_complete,
    method_session_complete,
    method_session_url,
    setup_session_url,
)
from billing.providers.base import ProviderError, ProviderUnavailable
from billing.providers.models import EngineCheckout


def _checkout(checkout_id: str) -> EngineCheckout:
    checkout = EngineCheckout.objects.filter(pk=checkout_id, provider="stripe").first()
    if checkout is None:
        raise Http404("No such checkout.")
    return checkout


def _error(request, checkout: EngineCheckout, *, message: str, code: str, status: int):
    context = {
        "checkout": checkout,
        "message": message,
        "code": code,
        "retry_url": f"/stripe/setup/{checkout.pk}/",
    }
    return render(request, "toss/error.html", context, status=status)


@require_GET
def stripe_setup(request, checkout_id: str):
    """`/stripe/setup/<id>/`: open the Checkout Session that saves the customer's card."""
    checkout = _checkout(checkout_id)
    if checkout.completed_at is not None:
        return redirect(checkout.success_url)
    done = (
        request.build_absolute_uri(f"/stripe/setup/{checkout.pk}/done/") + "?session_id={CHECKOUT_SESSION_ID}"
    )
    try:
        url = setup_session_url(checkout_id=checkout.pk, return_url=done, cancel_url=checkout.cancel_url)
    except ProviderUnavailable:
        return _error(request, checkout, message="Stripe did not answer. Reload this page to try again.",
                      code="provider_unavailable", status=503)  # fmt: skip
    except ProviderError as exc:
        return _error(request, checkout, message=exc.message, code=exc.code, status=409)
    return redirect(url)


@require_GET
def stripe_setup_done(request, checkout_id: str):
    """Stripe's return (`?session_id=cs_…`): start the subscription and charge it; safe to reload."""
    checkout = _checkout(checkout_id)
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 300:
        return _error(
            request, checkout, message="The card was not saved.", code="invalid_request", status=400
        )
    try:
        checkout = checkout_complete(checkout_id=checkout.pk, session_id=session_id)
    except ProviderUnavailable:
        return _error(request, checkout, message="Stripe did not answer. Reload this page to try again.",
                      code="provider_unavailable", status=503)  # fmt: skip
    except ProviderError as exc:
        status = exc.status_code if 400 <= exc.status_code < 500 else 402
        code = str(exc.details.get("provider_code") or exc.details.get("stripe_code") or exc.code)
        return _error(request, checkout, message=exc.message, code=code, status=status)
    return redirect(checkout.success_url)


@login_required
@require_GET
def stripe_method(request):
    """`/stripe/method/`: the plan page's "Update payment method" for a Stripe engine subscription
    opens a setup-mode Checkout Session; Stripe brings the customer back to `method/done/`."""
    from billing.memberships.services import customer_for_user

    customer = customer_for_user(user=request.user)
    done = request.build_absolute_uri("/stripe/method/done/") + "?session_id={CHECKOUT_SESSION_ID}"
    try:
        url = method_session_url(
            customer=customer.external_id, attempt=uuid.uuid4().hex[:16], return_url=done,
            cancel_url=request.build_absolute_uri("/account/plan/"),
        )  # fmt: skip
    except ProviderUnavailable:
        messages.error(request, "Stripe did not answer. Try again in a minute.")
        return redirect("plan")
    except ProviderError as exc:
        messages.error(request, exc.message)
        return redirect("plan")
    return redirect(url)


@login_required
@require_GET
def stripe_method_done(request):
    """Stripe's return (`?session_id=cs_…`): the new card replaces the old one (a past-due invoice is
    charged again with it); back to the plan page with what happened."""
    from billing.memberships.services import customer_for_user

    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 300:
        messages.error(request, "The card was not saved.")
        return redirect("plan")
    customer = customer_for_user(user=request.user)
    try:
        outcome = method_session_complete(customer=customer.external_id, session_id=session_id)
    except ProviderUnavailable:
        messages.error(request, "Stripe did not answer. Reload this page to try again.")
        return redirect("plan")
    except ProviderError as exc:
        messages.error(request, exc.message)
        return redirect("plan")
    if outcome == "failed":
        messages.error(request, "The new card was declined too; your plan stays past due.")
    elif outcome == "paid":
        messages.success(request, "Card updated; the overdue payment went through.")
    else:
        messages.success(request, "Card updated.")
    return redirect("plan")


# included by monetize/urls_tenant.py under `stripe/`
urlpatterns = [
    path("method/", stripe_method, name="stripe-method"),
    path("method/done/", stripe_method_done, name="stripe-method-done"),
    path("setup/<str:checkout_id>/", stripe_setup, name="stripe-setup"),
    path("setup/<str:checkout_id>/done/", stripe_setup_done, name="stripe-setup-done"),
]
