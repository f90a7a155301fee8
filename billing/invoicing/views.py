"""The sandbox provider's hosted checkout page (what Stripe Checkout would be), on the tenant site."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from billing.invoicing.engine.sandbox import (
    CardDeclined,
    UnknownCard,
    checkout_pay,
    payment_method_subscription,
    payment_method_update,
)
from billing.providers.base import ProviderUnavailable
from billing.providers.models import EngineCheckout
from kernel.money import format_amount


@require_http_methods(["GET", "POST"])
def sandbox_checkout(request, checkout_id: str):
    checkout = EngineCheckout.objects.filter(pk=checkout_id, provider="sandbox").first()
    if checkout is None:
        raise Http404("No such checkout.")
    error = None
    if request.method == "POST" and checkout.completed_at is None:
        try:
            checkout_pay(checkout_id=checkout.pk, card_number=request.POST.get("card", ""))
        except (CardDeclined, UnknownCard, ProviderUnavailable) as exc:
            error = exc.message
        else:
            return redirect(checkout.success_url)
    if checkout.completed_at is not None and request.method == "GET":
        return redirect(checkout.success_url)
    return render(
        request,
        "sandbox/checkout.html",
        {
            "checkout": checkout,
            "amount": format_amount(checkout.unit_amount * checkout.quantity, checkout.currency),
            "error": error,
        },
        status=402 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def sandbox_payment_method(request):
    """The sandbox's customer portal: the signed-in customer's saved test card, and a form to
    replace it; a past-due subscription is charged again at once with the new card."""
    from billing.memberships.selectors import membership_current
    from billing.memberships.services import customer_for_user

    customer = customer_for_user(user=request.user)
    plan = membership_current(customer=customer)  # beside it, channel memberships may have their own
    prefer = plan.provider_subscription_id if plan is not None and plan.provider == "sandbox" else ""
    subscription = payment_method_subscription(customer=customer.external_id, prefer=prefer)
    error = None
    if request.method == "POST" and subscription is not None:
        try:
            outcome = payment_method_update(
                subscription_id=subscription.pk, card_number=request.POST.get("card", "")
            )
        except (CardDeclined, UnknownCard) as exc:
            error = exc.message
        else:
            if outcome == "failed":
                error = "The new card was declined too; your plan stays past due."
            else:
                messages.success(
                    request,
                    "Card updated; the overdue payment went through."
                    if outcome == "paid"
                    else "Card updated.",
                )
                return redirect("plan")
    return render(
        request,
        "sandbox/payment_method.html",
        {"subscription": subscription, "error": error},
        status=402 if error else 200,
    )
