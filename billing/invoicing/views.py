"""The sandbox provider's hosted checkout page (what Stripe Checkout would be), on the tenant site."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from billing.invoicing.engine.sandbox import CardDeclined, UnknownCard, checkout_pay
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
