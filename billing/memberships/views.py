from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.memberships.services import checkout_create, customer_for_user
from monetize.errors import ApplicationError


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
