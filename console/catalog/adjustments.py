"""Coupons and tax rates in the catalog editor, for owners and admins (like the rest of /catalog/):
`/catalog/coupons/` and `/catalog/tax-rates/` (a list, a form for a new one, a page each with its
deactivation behind the layout's confirmation).

A coupon or a rate is made by the service the API's POST calls (`coupon_create`, `tax_rate_create`):
the same rules, and a refusal shown beside the field it names, changing nothing. Their terms never
change and neither is ever deleted: deactivating stops new redemptions (a coupon) or new invoices
charging it (a rate); customers who hold a coupon keep their discount for its duration, and issued
invoices keep their taxes, exactly as `POST /api/v1/coupons/{code}/deactivate` and
`POST /api/v1/tax-rates/{id}/deactivate` do."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required
from billing.discounts.display import coupon_duration, coupon_in_words, coupon_off
from billing.discounts.exceptions import DiscountsError
from billing.discounts.models import Coupon
from billing.discounts.services import coupon_create, coupon_deactivate
from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.models import TaxRate
from billing.invoicing.taxes import tax_rate_create, tax_rate_deactivate
from console.catalog.adjustment_forms import CouponForm, TaxRateForm, form_error_from
from console.catalog.display import coupon_status
from console.catalog.selectors import (
    catalog_coupon_get,
    catalog_coupons,
    catalog_tax_rate_get,
    catalog_tax_rates,
    catalog_tiers,
)
from console.catalog.views import EDITOR_ROLES
from kernel.decimals import decimal_text
from kernel.tables import Column, table_from_request
from kernel.templatetags.monetize import quantity

# --- what a coupon and a rate show ------------------------------------------------------------------


def _coupon_shown(coupon: Coupon, now) -> Coupon:
    coupon_in_words(coupon)
    coupon.url = reverse("catalog-coupon", args=[coupon.code])
    redeemed = quantity(coupon.times_redeemed)
    coupon.redeemed = (
        f"{redeemed} of {quantity(coupon.max_redemptions)}" if coupon.max_redemptions else redeemed
    )
    names = sorted(t.name for t in coupon.tiers.all())
    coupon.tier_names = ", ".join(names) if names else "Every tier"
    coupon.status = coupon_status(coupon, now)
    return coupon


def _tax_rate_shown(rate: TaxRate) -> TaxRate:
    rate.url = reverse("catalog-tax-rate", args=[rate.pk])
    rate.percent_text = f"{decimal_text(rate.percent)}%"
    rate.kind = "Inclusive" if rate.inclusive else "Exclusive"
    rate.where = rate.country or "Every country"
    rate.status = "active" if rate.active else "inactive"
    return rate


COUPON_COLUMNS = [
    Column("code", "Code", kind="code", sort="code", link="url"),
    Column("name", "Name"),
    Column("off", "Off"),
    Column("duration_words", "Duration"),
    Column("redeemed", "Redeemed", sort="times_redeemed"),
    Column("expires_at", "Expires", kind="date", sort="expires_at"),
    Column("tier_names", "Tiers"),
    Column("status", "Status", kind="badge"),
    Column("created_at", "Created", kind="date", sort="created_at"),
]
TAX_RATE_COLUMNS = [
    Column("name", "Name", sort="name", link="url"),
    Column("percent_text", "Rate", sort="percent"),
    Column("kind", "Type", sort="inclusive"),
    Column("where", "Country", sort="country"),
    Column("status", "Status", kind="badge", sort="active"),
    Column("created_at", "Created", kind="date", sort="created_at"),
]


# --- coupons ----------------------------------------------------------------------------------------


@require_GET
@role_required(*EDITOR_ROLES)
def coupon_list_page(request):
    table = table_from_request(
        request, rows=catalog_coupons(), columns=COUPON_COLUMNS, default_sort="-created_at"
    )
    now = timezone.now()
    table.page.object_list = [_coupon_shown(coupon, now) for coupon in table.page.object_list]
    return render(request, "console/catalog/coupons.html", {"table": table, "tab": "coupons"})


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def coupon_new(request):
    form = CouponForm(request.POST or None, tiers=catalog_tiers())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                coupon = coupon_create(**form.terms())
            except DiscountsError as error:
                form_error_from(form, error)
            else:
                messages.success(
                    request,
                    f"Coupon {coupon.code} created: {coupon_off(coupon)} off, {coupon_duration(coupon)}.",
                )
                return redirect("catalog-coupons")
        status = 400
    return render(
        request, "console/catalog/coupon_form.html", {"form": form, "tab": "coupons"}, status=status
    )


@require_GET
@role_required(*EDITOR_ROLES)
def coupon_detail(request, code: str):
    coupon = _coupon_shown(catalog_coupon_get(code=code), timezone.now())
    return render(request, "console/catalog/coupon.html", {"coupon": coupon, "tab": "coupons"})


@require_POST
@role_required(*EDITOR_ROLES)
def coupon_deactivate_page(request, code: str):
    coupon = catalog_coupon_get(code=code)
    if not coupon.active:
        messages.info(request, f"Coupon {coupon.code} was already deactivated.")
    else:
        coupon_deactivate(coupon=coupon)
        messages.success(
            request,
            f"Coupon {coupon.code} deactivated: no new redemptions; customers who hold it keep their discount.",
        )
    return redirect("catalog-coupon", code=coupon.code)


# --- tax rates --------------------------------------------------------------------------------------


@require_GET
@role_required(*EDITOR_ROLES)
def tax_rate_list_page(request):
    table = table_from_request(
        request, rows=catalog_tax_rates(), columns=TAX_RATE_COLUMNS, default_sort="-created_at"
    )
    table.page.object_list = [_tax_rate_shown(rate) for rate in table.page.object_list]
    return render(request, "console/catalog/tax_rates.html", {"table": table, "tab": "tax-rates"})


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def tax_rate_new(request):
    form = TaxRateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                rate = tax_rate_create(**form.terms())
            except InvoicingError as error:
                form_error_from(form, error)
            else:
                shown = _tax_rate_shown(rate)
                messages.success(
                    request,
                    f"Tax rate {rate.name} created: {shown.percent_text} {shown.kind.lower()}, "
                    f"{rate.country or 'every country'}.",
                )
                return redirect("catalog-tax-rates")
        status = 400
    return render(
        request, "console/catalog/tax_rate_form.html", {"form": form, "tab": "tax-rates"}, status=status
    )


@require_GET
@role_required(*EDITOR_ROLES)
def tax_rate_detail(request, tax_rate_id: str):
    rate = _tax_rate_shown(catalog_tax_rate_get(tax_rate_id=tax_rate_id))
    return render(request, "console/catalog/tax_rate.html", {"rate": rate, "tab": "tax-rates"})


@require_POST
@role_required(*EDITOR_ROLES)
def tax_rate_deactivate_page(request, tax_rate_id: str):
    rate = catalog_tax_rate_get(tax_rate_id=tax_rate_id)
    if not rate.active:
        messages.info(request, f"Tax rate {rate.name} was already inactive.")
    else:
        tax_rate_deactivate(tax_rate=rate)
        messages.success(
            request,
            f"Tax rate {rate.name} deactivated: new invoices no longer charge it; issued ones keep it.",
        )
    return redirect("catalog-tax-rate", tax_rate_id=rate.pk)
