"""The creator's dashboard (/creator/: figures, their tiers, payouts), the fan's supporting page,
and the sandbox's connected-account onboarding page (what Stripe's hosted Connect onboarding would
be): one click activates the creator's sandbox payout account and returns to the integrator."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from billing.ledger.creators.dashboard import (
    creator_ledger_lines,
    creator_monthly_earnings,
    creator_tier_members,
    creator_tips_by_item,
)
from billing.ledger.creators.models import Creator, PayoutStatus
from billing.ledger.creators.payouts import payout_list, payout_request
from billing.ledger.creators.selectors import creator_balance
from billing.ledger.creators.services import creator_account_update
from billing.providers.sandbox import CONNECT_LINK_SECONDS, CONNECT_SALT
from kernel.charts import time_chart
from kernel.errors import ApplicationError


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


def _own_creator(request):
    from billing.ledger.creators.services import creator_for_user

    return creator_for_user(user=request.user)


@require_GET
@role_required(Role.CREATOR)
def creator_dashboard(request):
    """The creator's dashboard: balances, monthly earnings, members per tier, tips per item, the
    ledger (CSV with ?format=csv) and payout onboarding."""
    creator = _own_creator(request)
    lines = creator_ledger_lines(creator=creator)
    if request.GET.get("format") == "csv":
        return _ledger_csv(creator, lines)
    balances = creator_balance(creator=creator)
    currency = next(iter(balances), "usd")
    series = creator_monthly_earnings(creator=creator, currency=currency)
    context = {
        "creator": creator,
        "balances": balances,
        "currency": currency,
        "chart": time_chart(
            chart_id="creator-earnings",
            points=[item["start"] for item in series],
            series=[{"label": "Net earnings", "values": [item["value"] or 0 for item in series]}],
            granularity="month",
            currency=currency,
        ),
        "tiers": creator_tier_members(creator=creator),
        "tips": creator_tips_by_item(creator=creator),
        "payouts": list(payout_list(creator=creator)[:20]),
        "payout_min": getattr(request.tenant, "payout_min_amount", 0),
        # amounts as the creator reads them: what we owe them is positive
        "lines": [(line, -line.amount) for line in lines[:50]],
    }
    return render(request, "creators/dashboard.html", context)


def _ledger_csv(creator, lines) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{creator.handle}-ledger.csv"'
    writer = csv.writer(response)
    writer.writerow(
        ["occurred_at", "account", "currency", "amount", "balance_after", "source", "description"]
    )
    for line in lines.iterator(chunk_size=2000):
        # amounts as the creator reads them: what we owe them is positive
        writer.writerow([
            line.occurred_at.isoformat(), line.account.code, line.currency, -line.amount, -line.balance_after,
            line.transaction.source, line.transaction.description,
        ])  # fmt: skip
    return response


@require_POST
@role_required(Role.CREATOR)
def creator_onboard(request):
    """Start payout onboarding at the tenant's provider for creators (the sandbox in demos)."""
    from billing.ledger.creators.services import creator_onboarding_start

    creator = _own_creator(request)
    provider = request.POST.get("provider") or "sandbox"
    try:
        url = creator_onboarding_start(
            creator=creator, provider=provider, return_url=request.build_absolute_uri("/creator/")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("creator-dashboard")
    return redirect(url)


@require_POST
@role_required(Role.CREATOR)
def creator_payout(request):
    """The creator asks for their available balance in one currency (or part of it) to be paid out."""
    creator = _own_creator(request)
    currency = (request.POST.get("currency") or "").strip().lower()
    raw = (request.POST.get("amount") or "").strip()
    amount = None
    if raw:
        try:
            amount = int(raw)
        except ValueError:
            messages.error(request, "The amount is a whole number of minor units (cents).")
            return redirect("creator-dashboard")
    try:
        payout = payout_request(creator=creator, currency=currency, amount=amount)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("creator-dashboard")
    from kernel.money import format_amount

    messages.success(
        request,
        f"Payout of {format_amount(payout.amount, payout.currency)} requested: it is on its way to your "
        f"{payout.provider} account.",
    )
    return redirect("creator-dashboard")


@require_GET
@login_required
def fan_supporting(request):
    """The fan's "my memberships and tips": the creators' tiers they are (or were) a member of and
    the tips they paid, newest first."""
    from billing.ledger.creators.selectors import fan_supporting as supporting
    from billing.memberships.services import customer_for_user

    memberships, tips = supporting(customer=customer_for_user(user=request.user))
    if request.GET.get("checkout") == "done":
        messages.info(
            request,
            "Thank you! Your membership shows here as soon as the payment is confirmed (reload in a moment).",
        )
    elif request.GET.get("tipped") is not None:
        messages.info(request, "Thank you for your tip! It shows here as soon as the payment is confirmed.")
    return render(request, "creators/supporting.html", {"memberships": memberships, "tips": tips})
