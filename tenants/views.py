"""The operator's console on the bare host: every tenant with its domain and state, and (superusers)
create, suspend, resume and delete. Deleting drops the tenant's schema: the form asks for its slug."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from kernel.errors import ApplicationError
from tenants.selectors import tenant_get_by_slug, tenant_list, tenant_logo_png
from tenants.services import tenant_create, tenant_delete, tenant_resume, tenant_suspend


class TenantCreateForm(forms.Form):
    slug = forms.CharField(
        max_length=40,
        help_text="3–40 lowercase letters, digits and hyphens; names its schema and default host.",
    )
    name = forms.CharField(max_length=200, help_text="The business's name, shown on its pages and invoices.")
    domain = forms.CharField(
        max_length=253, required=False, help_text="Leave empty for <slug>.<the default tenant domain>."
    )


def _superuser(request) -> None:
    if not (request.user.is_authenticated and request.user.is_superuser):
        raise PermissionDenied("Only the operator's superusers manage tenants.")


def console(request):
    """The operator's landing page; superusers see every tenant and manage them."""
    if not (request.user.is_authenticated and request.user.is_superuser):
        return render(request, "tenants/console.html", {"tenants": None})
    form = TenantCreateForm()
    if request.method == "POST":
        form = TenantCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                tenant = tenant_create(
                    slug=data["slug"].strip().lower(),
                    name=data["name"].strip(),
                    domain=data["domain"] or None,
                )
            except ApplicationError as exc:
                field = (exc.details or {}).get("field")
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                domain = tenant.domains.first()
                messages.success(request, f"Created {tenant.name}: it answers at {domain.domain}.")
                return redirect("console")
    return render(
        request,
        "tenants/console.html",
        {"tenants": list(tenant_list().order_by("slug")), "form": form, "port": request.get_port()},
    )


def _tenant(slug: str):
    tenant = tenant_get_by_slug(slug=slug)
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant


@require_POST
def tenant_action(request, slug: str, action: str):
    _superuser(request)
    tenant = _tenant(slug)
    if action == "suspend":
        tenant_suspend(tenant=tenant)
        messages.success(request, f"{tenant.name} is suspended: its site and API answer 403 until resumed.")
    elif action == "resume":
        tenant_resume(tenant=tenant)
        messages.success(request, f"{tenant.name} is live again.")
    elif action == "delete":
        if request.POST.get("confirm", "").strip() != tenant.slug:
            messages.error(
                request, f"Type the tenant's slug ({tenant.slug}) to delete it; nothing was deleted."
            )
            return redirect("console")
        tenant_delete(tenant=tenant)
        messages.success(request, f"Deleted {tenant.name} and everything in its schema.")
    else:
        raise Http404("No such action.")
    return redirect("console")


def tenant_logo(request):
    """The tenant's logo (the PNG we re-encoded at upload) for its pages' header; 404 without one."""
    png = tenant_logo_png(tenant=request.tenant)
    if png is None:
        raise Http404("No logo.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"  # the layout's URL changes with the logo
    response["X-Content-Type-Options"] = "nosniff"
    return response
