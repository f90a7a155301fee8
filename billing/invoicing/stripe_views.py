"""Stripe engine-mode checkout pages on the tenant site: ours opens Stripe's setup-mode Checkout
Session; Stripe brings the customer back here once the card is saved."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from billing.invoicing.engine.stripe import checkout_complete, setup_session_url
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


# included by monetize/urls_tenant.py under `stripe/`
urlpatterns = [
    path("setup/<str:checkout_id>/", stripe_setup, name="stripe-setup"),
    path("setup/<str:checkout_id>/done/", stripe_setup_done, name="stripe-setup-done"),
]
