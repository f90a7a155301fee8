"""Tenant pages: landing, dashboard, settings (integrator keys moved to console/developers)."""

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import TenantSettingsForm
from accounts.permissions import role_required
from accounts.roles import Role
from accounts.selectors import api_key_list
from tenants.exceptions import ApplicationError
from tenants.models import TenantLogo
from tenants.services import LOGO_MAX_BYTES, tenant_logo_remove, tenant_logo_set, tenant_settings_update


def home(request):
    return render(request, "accounts/home.html")


@login_required
def dashboard(request):
    active = api_key_list().filter(revoked_at__isnull=True).count() if request.user.is_staff else 0
    return render(request, "accounts/dashboard.html", {"active_keys": active})


@require_http_methods(["GET", "POST"])
@role_required(Role.OWNER)
def tenant_settings(request):
    form = TenantSettingsForm(
        request.POST or None,
        request.FILES or None,
        initial={
            "rate_limit_failure_mode": request.tenant.rate_limit_failure_mode,
            "unknown_usage_customer": request.tenant.unknown_usage_customer,
            "invoice_address": request.tenant.invoice_address,
            **{
                name: getattr(request.tenant, name)
                for name in (
                    "creator_fee_bps",
                    "earnings_hold_days",
                    "tip_min_amount",
                    "tip_max_amount",
                    "sandbox_fee_bps",
                    "payout_min_amount",
                    "payout_schedule",
                    "brand_color",
                    "support_email",
                )
            },  # fmt: skip
        },
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        upload, remove = data.pop("logo", None), data.pop("logo_remove", False)
        try:
            if upload is not None:
                tenant_logo_set(tenant=request.tenant, data=upload.read(LOGO_MAX_BYTES + 1))
            elif remove:
                tenant_logo_remove(tenant=request.tenant)
        except ApplicationError as exc:
            form.add_error("logo", exc.message)
        else:
            tenant_settings_update(tenant=request.tenant, **data)
            messages.success(
                request, "Settings saved." + (" The new logo is on your invoices." if upload else "")
            )
            return redirect("tenant-settings")
    logo = TenantLogo.objects.filter(tenant=request.tenant).first()
    preview = f"data:image/png;base64,{base64.b64encode(bytes(logo.png)).decode()}" if logo else None
    return render(request, "accounts/settings.html", {"form": form, "logo": logo, "logo_preview": preview})
