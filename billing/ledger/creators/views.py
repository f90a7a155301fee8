"""The sandbox's connected-account onboarding page (what Stripe's hosted Connect onboarding would
be): one click activates the creator's sandbox payout account and returns to the integrator."""

from django.core import signing
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from billing.ledger.creators.models import Creator, PayoutStatus
from billing.ledger.creators.services import creator_account_update
from billing.providers.sandbox import CONNECT_LINK_SECONDS, CONNECT_SALT


@require_http_methods(["GET", "POST"])
def sandbox_connect(request, token: str):
    try:
        link = signing.loads(token, salt=CONNECT_SALT, max_age=CONNECT_LINK_SECONDS)
    except signing.BadSignature:
        raise Http404("This onboarding link is not valid (or expired): ask for a new one.") from None
    creator = Creator.objects.filter(payout_provider="sandbox", provider_account_id=link["account"]).first()
    if creator is None:
        raise Http404("No such sandbox account.")
    if request.method == "POST":
        creator_account_update(provider="sandbox", account_id=link["account"], status=PayoutStatus.ACTIVE)
        return redirect(link["return_url"])
    return render(request, "sandbox/connect.html", {"creator": creator})
