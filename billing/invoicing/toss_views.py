"""TossPayments checkout pages on the tenant site: our page opens Toss's billing-auth window
(JS SDK v2); its successUrl and failUrl come back here."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from billing.invoicing.engine.toss import checkout_complete, method_subscription, method_update
from billing.providers.base import ProviderError, ProviderUnavailable
from billing.providers.models import EngineCheckout
from kernel.money import format_amount


def _checkout(checkout_id: str) -> EngineCheckout:
    checkout = EngineCheckout.objects.filter(pk=checkout_id, provider="toss").first()
    if checkout is None:
        raise Http404("No such checkout.")
    return checkout


def _error(request, checkout: EngineCheckout, *, message: str, code: str, status: int):
    return render(
        request, "toss/error.html", {"checkout": checkout, "message": message, "code": code}, status=status
    )


@require_GET
def toss_checkout(request, checkout_id: str):
    """`/toss/checkout/<id>/`: the page that asks Toss for a billing authorization."""
    from billing.providers.models import ProviderAccount
    from billing.providers.registry import provider_for

    checkout = _checkout(checkout_id)
    if checkout.completed_at is not None:
        return redirect(checkout.success_url)
    account = ProviderAccount.objects.filter(provider="toss", mode=checkout.mode).first()
    if account is None:
        return _error(request, checkout, message="TossPayments is not configured.", code="provider_not_configured",
                      status=409)  # fmt: skip
    return render(
        request,
        "toss/checkout.html",
        {
            "checkout": checkout,
            "client_key": provider_for(account).client_key,
            "amount": format_amount(checkout.unit_amount * checkout.quantity, checkout.currency),
            "success_url": request.build_absolute_uri(f"/toss/success/{checkout.pk}/"),
            "fail_url": request.build_absolute_uri(f"/toss/fail/{checkout.pk}/"),
        },
    )


@require_GET
def toss_success(request, checkout_id: str):
    """Toss's successUrl (`?customerKey=…&authKey=…`): issue, subscribe, charge; safe to reload."""
    checkout = _checkout(checkout_id)
    customer_key, auth_key = request.GET.get("customerKey", ""), request.GET.get("authKey", "")
    if not customer_key or not auth_key or len(auth_key) > 300 or len(customer_key) > 300:
        return _error(
            request, checkout, message="The authorization is incomplete.", code="invalid_request", status=400
        )
    try:
        checkout = checkout_complete(checkout_id=checkout.pk, customer_key=customer_key, auth_key=auth_key)
    except ProviderUnavailable:
        return _error(request, checkout, message="TossPayments did not answer. Reload this page to try again.",
                      code="provider_unavailable", status=503)  # fmt: skip
    except ProviderError as exc:
        status = exc.status_code if 400 <= exc.status_code < 500 else 402
        return _error(request, checkout, message=exc.message, code=str(exc.details.get("toss_code") or exc.code),
                      status=status)  # fmt: skip
    return redirect(checkout.success_url)


@require_GET
def toss_fail(request, checkout_id: str):
    """Toss's failUrl (`?code=…&message=…`): the window was closed or the card refused."""
    checkout = _checkout(checkout_id)
    code = request.GET.get("code", "")[:64]
    message = request.GET.get("message", "")[:300] or "The card was not registered."
    return _error(
        request, checkout, message=message, code=code, status=200 if code == "PAY_PROCESS_CANCELED" else 402
    )


def _method_subscription(request):
    """The signed-in customer's TossPayments subscription whose card is replaced (the plan's first)."""
    from billing.memberships.selectors import membership_current
    from billing.memberships.services import customer_for_user

    customer = customer_for_user(user=request.user)
    plan = membership_current(customer=customer)
    prefer = plan.provider_subscription_id if plan is not None and plan.provider == "toss" else ""
    return method_subscription(customer=customer.external_id, prefer=prefer)


@login_required
@require_GET
def toss_method(request):
    """`/toss/method/` ("Update payment method"): Toss's billing-auth window registers another card
    for the same customerKey; its successUrl (`/toss/method/done/`) puts it on the subscription."""
    from billing.providers.models import ProviderAccount
    from billing.providers.registry import provider_for

    sub = _method_subscription(request)
    account = ProviderAccount.objects.filter(provider="toss", mode=sub.mode).first() if sub else None
    if sub is None or account is None:
        messages.error(request, "There is no TossPayments subscription to update.")
        return redirect("plan")
    return render(
        request,
        "toss/method.html",
        {
            "subscription": sub,
            "client_key": provider_for(account).client_key,
            "success_url": request.build_absolute_uri("/toss/method/done/"),
            "fail_url": request.build_absolute_uri("/toss/method/fail/"),
        },
    )


@login_required
@require_GET
def toss_method_done(request):
    """Toss's successUrl (`?customerKey=…&authKey=…`): the new billing key replaces the old one (a
    past-due period is charged again with it); back to the plan page with what happened."""
    customer_key, auth_key = request.GET.get("customerKey", ""), request.GET.get("authKey", "")
    sub = _method_subscription(request)
    if sub is None or not customer_key or not auth_key or len(auth_key) > 300 or len(customer_key) > 300:
        messages.error(request, "The card was not registered.")
        return redirect("plan")
    try:
        outcome = method_update(subscription_id=sub.pk, customer_key=customer_key, auth_key=auth_key)
    except ProviderUnavailable:
        messages.error(request, "TossPayments did not answer. Try again in a minute.")
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


@login_required
@require_GET
def toss_method_fail(request):
    """Toss's failUrl: the window was closed or the card refused; the saved card stays."""
    code = request.GET.get("code", "")[:64]
    if code == "PAY_PROCESS_CANCELED":
        messages.info(request, "Nothing changed: your saved card stays.")
    else:
        message = request.GET.get("message", "")[:300] or "The card was not registered."
        messages.error(request, f"{message} Your saved card stays.")
    return redirect("plan")


# included by monetize/urls_tenant.py under `toss/`
urlpatterns = [
    path("method/", toss_method, name="toss-method"),
    path("method/done/", toss_method_done, name="toss-method-done"),
    path("method/fail/", toss_method_fail, name="toss-method-fail"),
    path("checkout/<str:checkout_id>/", toss_checkout, name="toss-checkout"),
    path("success/<str:checkout_id>/", toss_success, name="toss-success"),
    path("fail/<str:checkout_id>/", toss_fail, name="toss-fail"),
]
