"""The customer's "Plan & usage" page: tier, every feature with its usage, end-user API keys."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from billing.entitlements.exceptions import EntitlementsError
from billing.entitlements.models import CustomerApiKey
from billing.entitlements.selectors import feature_usage, plan_with_snapshot
from billing.entitlements.services import customer_key_create, customer_key_revoke, customer_key_rotate
from billing.memberships.exceptions import MembershipsError
from billing.memberships.portal import membership_fingerprint, membership_state
from billing.memberships.services import customer_for_user
from billing.metering.credit_models import credits_display
from billing.metering.credit_selectors import credit_balance, credit_grants_active, credit_ledger_recent
from billing.metering.views import usage_charts
from billing.tiers.models import Feature, Price


def _feature_rows(snapshot: dict) -> list[dict]:
    names = dict(Feature.objects.values_list("code", "name"))
    rows = []
    for code, entry in snapshot["features"].items():
        row = {
            "code": code,
            "name": names.get(code, code),
            "kind": entry["kind"],
            "enabled": entry["enabled"],
        }
        if entry["kind"] in ("limit", "metered"):
            row.update(used=feature_usage(entry), limit=entry["limit"])
        elif entry["kind"] == "rate" and entry["rate"]:
            row.update(rate_limit=entry["rate"][0], window=entry["rate"][1])
        rows.append(row)
    return sorted(rows, key=lambda r: (not r["enabled"], r["name"]))


def _credits(customer) -> dict:
    balance = credit_balance(customer=customer)
    return {key: credits_display(balance[f"{key}_micros"]) for key in ("balance", "available", "overage")} | {
        "overage_micros": balance["overage_micros"]
    }


@login_required
@require_http_methods(["GET", "POST"])
def plan(request):
    customer = customer_for_user(user=request.user)
    new_secret = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "create":
                _, new_secret = customer_key_create(
                    customer=customer, name=request.POST.get("name", "")[:100]
                )
            elif action in {"revoke", "rotate"}:
                key = get_object_or_404(CustomerApiKey, pk=request.POST.get("key_id") or 0, customer=customer)
                if action == "revoke":
                    customer_key_revoke(key=key)
                    messages.success(request, f"Revoked {key.prefix}…")
                    return redirect("plan")
                _, new_secret = customer_key_rotate(key=key)
            else:
                messages.error(request, "Unknown action.")
                return redirect("plan")
        except (EntitlementsError, MembershipsError) as exc:
            messages.error(request, exc.message)
            return redirect("plan")
    membership, snapshot = plan_with_snapshot(customer=customer)
    state = membership_state(membership=membership)
    fingerprint = membership_fingerprint(membership=membership)
    # after an action or a checkout, the page the customer came back to: until the provider's webhook
    # lands the membership looks as it did (`pending` is what it was): the page waits and polls
    pending = request.GET.get("pending")
    waiting = (
        pending == fingerprint
        or (
            pending is None
            and request.GET.get("checkout") == "done"
            and state["state"] not in ("active", "trialing", "past_due")
        )
        or (request.GET.get("checkout") == "done" and state["state"] == "incomplete")
    )
    response = render(
        request,
        "billing/plan.html",
        {
            "customer": customer,
            "membership": membership,
            "state": state,
            "fingerprint": fingerprint,
            "waiting": waiting,
            "checkout_done": request.GET.get("checkout") == "done",
            "change_prices": Price.objects.filter(active=True, tier__is_public=True, tier__is_default=False)
            .exclude(code="")
            .exclude(interval="one_time")
            .select_related("tier")
            .order_by("tier__sort_order", "unit_amount"),
            "snapshot": snapshot,
            "features": _feature_rows(snapshot),
            "keys": customer.api_keys.all(),
            "payments": customer.payments.all()[:20],
            "usage_charts": usage_charts(customer=customer),
            "credits": _credits(customer),
            "credit_grants": credit_grants_active(customer=customer),
            "credit_ledger": credit_ledger_recent(customer=customer, limit=20),
            "new_secret": new_secret,
        },
    )
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response
