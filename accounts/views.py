"""Tenant pages: landing, dashboard, integrator key settings."""

import base64

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.exceptions import AccountsError
from accounts.forms import ApiKeyCreateForm, TenantSettingsForm
from accounts.models import IntegratorApiKey
from accounts.permissions import role_required
from accounts.roles import Role
from accounts.selectors import api_key_list
from accounts.services import api_key_create, api_key_revoke, api_key_rotate
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
def api_keys(request):
    form = ApiKeyCreateForm()
    new_secret = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            form = ApiKeyCreateForm(request.POST)
            if form.is_valid():
                key, new_secret = api_key_create(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    created_by=request.user,
                )
                form = ApiKeyCreateForm()
        elif action in {"revoke", "rotate"}:
            key = get_object_or_404(IntegratorApiKey, pk=request.POST.get("key_id") or 0)
            try:
                if action == "revoke":
                    api_key_revoke(api_key=key)
                    messages.success(request, f"Revoked {key.prefix}…")
                    return redirect("api-keys")
                _, new_secret = api_key_rotate(api_key=key, created_by=request.user)
            except AccountsError as exc:
                messages.error(request, exc.message)
                return redirect("api-keys")
        else:
            messages.error(request, "Unknown action.")
            return redirect("api-keys")
    response = render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "keys": api_key_list(),
            "new_secret": new_secret,
            "grace_hours": round(settings.API_KEY_ROTATION_GRACE_SECONDS / 3600, 1),
        },
    )
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


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
            "sandbox_fee_bps": request.tenant.sandbox_fee_bps,
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
