"""Customer pages for staff: `/customers/` and `/customers/<external_id>/` with its actions.

Who may do what (accounts/roles.py: finance changes billing, support only looks):

| action                                  | owner | admin | finance | support |
|-----------------------------------------|-------|-------|---------|---------|
| see the list and a customer             | yes   | yes   | yes     | yes     |
| grant / change a tier, cancel           | yes   | yes   | yes     | -       |
| refund (credit note), add credits       | yes   | yes   | yes     | -       |
| override a feature                      | yes   | yes   | yes     | -       |
| apply or end a discount (a coupon)      | yes   | yes   | -       | -       |

Other roles get a 403 (a visitor who is not logged in goes to the login page). Every action is a
POST that calls one service, then redirects to the customer with a flash message saying what
happened; a form that does not validate shows the page again (400) with the errors beside the
fields and changes nothing."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES, Role
from billing.discounts.display import coupon_duration, coupon_in_words, coupon_off
from billing.entitlements.services import override_delete, override_set
from billing.invoicing.credit_notes import credit_note_create
from billing.invoicing.models import CreditNoteStatus
from billing.invoicing.pages.display import credit_error_text
from billing.memberships.models import LIVE_STATUSES
from billing.memberships.selectors import membership_get
from billing.memberships.services import (
    customer_discount_apply,
    customer_discount_remove,
    membership_cancel,
    membership_change,
    membership_set_tier,
)
from billing.metering.credit_adjustments import credits_adjust
from billing.metering.credit_models import MICROS
from console.customers.detail import creditable_invoices, customer_page, customer_row
from console.customers.display import customer_table, usage_charts
from console.customers.forms import (
    CancelForm,
    CreditsForm,
    CustomerFilterForm,
    DiscountForm,
    OverrideForm,
    OverrideRemoveForm,
    RefundForm,
    TierForm,
)
from console.customers.selectors import (
    customer_count,
    customer_search,
    list_features,
    list_meters,
    list_tiers,
    redeemable_coupons,
)
from kernel.decimals import grouped
from kernel.errors import ApplicationError
from kernel.money import format_amount

ACTION_ROLES = (Role.OWNER, Role.ADMIN, Role.FINANCE)
DISCOUNT_ROLES = (Role.OWNER, Role.ADMIN)  # coupons are the catalog's: its editors give them
PAGE_SIZE = 25


class CountedPaginator(Paginator):
    """A paginator told its count by a cheaper query than COUNT(*) over the annotated rows."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached_property


def _credits_text(micros: int) -> str:
    return grouped(Decimal(micros) / MICROS)


def may_act(user) -> bool:
    return user.is_superuser or user.role in ACTION_ROLES


def may_discount(user) -> bool:
    return user.is_superuser or user.role in DISCOUNT_ROLES


@require_GET
@role_required(*STAFF_ROLES)
def customer_list(request):
    tiers, meters = list_tiers(), list_meters()
    form = CustomerFilterForm(request.GET or None, tiers=tiers, meters=meters)
    filters = form.filters()
    rows = customer_search(filters=filters, tiers=tiers)
    count = customer_count(filters=filters, tiers=tiers)
    page = CountedPaginator(rows, PAGE_SIZE, count=count).get_page(request.GET.get("page"))
    return render(
        request,
        "console/customers/list.html",
        {
            "form": form,
            "filters": filters,
            "filtered": bool(filters.search or filters.tier or filters.status),
            "table": customer_table(page=page, filters=filters),
            "meters": meters,
            "month": timezone.now(),
        },
    )


def _row(external_id: str):
    customer = customer_row(external_id=external_id, tiers=(tiers := list_tiers()))
    if customer is None:
        raise Http404("No such customer.")
    return customer, tiers


def _detail(request, customer, tiers, *, forms: dict | None = None, status: int = 200):
    data = customer_page(customer=customer, tiers=tiers, now=timezone.now())
    membership = data.membership
    live = membership is not None and membership.status in LIVE_STATUSES
    forms = forms or {}
    discounting = may_discount(request.user)
    if data.discount is not None:
        coupon_in_words(data.discount.coupon)
    coupons = redeemable_coupons() if discounting else []
    return render(
        request,
        "console/customers/detail.html",
        {
            "page": data,
            "usage": usage_charts(data.usage),
            "customer": customer,
            "membership": membership,
            "live": live,
            "may_act": may_act(request.user),
            "may_discount": discounting,
            "discount_form": forms.get("discount") or DiscountForm(coupons=coupons),
            "may_cancel": live and not membership.cancel_at_period_end,
            "tier_form": forms.get("tier") or TierForm(tiers=tiers, initial={"tier": customer.tier_code}),
            "cancel_form": forms.get("cancel") or CancelForm(),
            "refund_form": forms.get("refund") or RefundForm(invoices=data.creditable_invoices),
            "credits_form": forms.get("credits") or CreditsForm(),
            "override_form": forms.get("override") or OverrideForm(features=data.features),
            "open_form": next(iter(forms), ""),
        },
        status=status,
    )


@require_GET
@role_required(*STAFF_ROLES)
def customer_detail(request, external_id: str):
    customer, tiers = _row(external_id)
    return _detail(request, customer, tiers)


def _invalid(request, customer, tiers, name: str, form):
    messages.error(request, "Nothing was changed: check the form below.")
    return _detail(request, customer, tiers, forms={name: form}, status=400)


def _done(customer):
    return redirect("customer", external_id=customer.external_id)


def _tier(request, customer, tiers):
    form = TierForm(request.POST, tiers=tiers)
    if not form.is_valid():
        return _invalid(request, customer, tiers, "tier", form)
    tier = form.cleaned_data["tier"]
    live = customer.live_membership_id
    membership = membership_get(membership_id=live) if live else None
    if membership is not None and membership.provider != "manual":
        # a paid subscription changes at its provider (upgrades now, downgrades at period end);
        # ending it here would leave the provider charging (a paused one is refused, readably)
        applies = membership_change(membership=membership, tier_code=tier.code)
        when = "now" if applies == "now" else "at the end of the period"
        messages.success(request, f"{customer} moves to {tier.name} {when} (through {membership.provider}).")
    else:
        membership_set_tier(customer=customer, tier=tier)
        messages.success(request, f"{customer} is now on {tier.name}.")
    return _done(customer)


def _cancel(request, customer, tiers):
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _invalid(request, customer, tiers, "cancel", form)
    if customer.live_membership_id is None:
        messages.info(request, f"{customer} has no subscription to cancel.")
        return _done(customer)
    at_period_end = form.cleaned_data["when"] == "period_end"
    membership = membership_get(membership_id=customer.live_membership_id)
    membership = membership_cancel(membership=membership, at_period_end=at_period_end)
    if membership.provider != "manual":
        messages.success(
            request, f"Cancellation sent to {membership.provider}: its webhook updates this page."
        )
    elif membership.cancel_at_period_end:
        messages.success(
            request, f"{customer}'s {membership.tier.name} subscription ends at the end of the period."
        )
    else:
        messages.success(request, f"{customer}'s {membership.tier.name} subscription is canceled.")
    return _done(customer)


def _refund(request, customer, tiers):
    form = RefundForm(request.POST, invoices=creditable_invoices(customer=customer))
    if not form.is_valid():
        return _invalid(request, customer, tiers, "refund", form)
    data = form.cleaned_data
    invoice = data["invoice"]
    try:
        note = credit_note_create(
            invoice_id=invoice.pk,
            amount=data["amount"],
            reason=data["reason"],
            memo=data["memo"],
            refund=data["refund"],
        )
    except ApplicationError as exc:
        messages.error(request, f"Nothing was refunded. {credit_error_text(exc, invoice.currency)}")
        return _done(customer)
    amount = format_amount(note.amount, note.currency)
    if note.status == CreditNoteStatus.REFUND_PENDING:
        messages.warning(
            request,
            f"Credit note {note.number} ({amount}) issued; {note.provider} did not answer yet, the refund is retried.",
        )
    elif note.refund_amount:
        refunded = format_amount(note.refund_amount, note.currency)
        messages.success(
            request, f"Credit note {note.number} issued: {refunded} refunded through {note.provider}."
        )
    else:
        messages.success(request, f"Credit note {note.number} issued for {amount} on {invoice.number}.")
    return _done(customer)


def _credits(request, customer, tiers):
    form = CreditsForm(request.POST)
    if not form.is_valid():
        return _invalid(request, customer, tiers, "credits", form)
    data = form.cleaned_data
    adjustment = credits_adjust(
        customer=customer, amount=data["amount"], reason=data["reason"], reference=data["reference"]
    )
    amount = _credits_text(abs(adjustment.amount))
    verb = "added" if adjustment.amount > 0 else "taken back"
    again = "" if adjustment.created else " (this form was already sent: applied once)"
    messages.success(
        request, f"{amount} credits {verb}{again}. Balance: {_credits_text(adjustment.balance)} credits."
    )
    return _done(customer)


def _override(request, customer, tiers):
    form = OverrideForm(request.POST, features=list_features())
    if not form.is_valid():
        return _invalid(request, customer, tiers, "override", form)
    override = override_set(customer=customer, **form.service_arguments())
    messages.success(request, f"Override saved: {override.feature.name} for {customer}.")
    return _done(customer)


def _override_remove(request, customer, tiers):
    form = OverrideRemoveForm(request.POST)
    removed = form.is_valid() and override_delete(customer=customer, feature=form.cleaned_data["feature"])
    if removed:
        messages.success(request, f"Override removed: {form.cleaned_data['feature']} follows the tier again.")
    else:
        messages.info(request, "There was no such override.")
    return _done(customer)


def _discount(request, customer, tiers):
    if not may_discount(request.user):
        raise PermissionDenied
    form = DiscountForm(request.POST, coupons=redeemable_coupons())
    if not form.is_valid():
        return _invalid(request, customer, tiers, "discount", form)
    redemption, created = customer_discount_apply(customer=customer, coupon_code=form.cleaned_data["coupon"])
    coupon = redemption.coupon
    if created:
        messages.success(
            request, f"{customer} now has {coupon.code}: {coupon_off(coupon)} off, {coupon_duration(coupon)}."
        )
    else:
        messages.info(request, f"{customer} already has {coupon.code}: nothing was counted twice.")
    return _done(customer)


def _discount_remove(request, customer, tiers):
    if not may_discount(request.user):
        raise PermissionDenied
    ended = customer_discount_remove(customer=customer)
    if ended is None:
        messages.info(request, f"{customer} had no discount.")
    else:
        messages.success(
            request, f"{customer}'s discount ({ended.coupon.code}) ended: next invoices are full price."
        )
    return _done(customer)


ACTIONS = {
    "tier": _tier,
    "cancel": _cancel,
    "refund": _refund,
    "credits": _credits,
    "override": _override,
    "override-remove": _override_remove,
    "discount": _discount,
    "discount-remove": _discount_remove,
}


@require_POST
@role_required(*ACTION_ROLES)
def customer_action(request, external_id: str, action: str):
    handler = ACTIONS.get(action)
    if handler is None:
        raise Http404("No such action.")
    customer, tiers = _row(external_id)
    try:
        return handler(request, customer, tiers)
    except ApplicationError as exc:  # a refusal of the service (state, provider): said, nothing changed
        messages.error(request, f"Nothing was changed. {exc.message}")
        return _done(customer)
