from django.shortcuts import render

from tenants.selectors import tenant_list


def console(request):
    """The operator's landing page on the bare host; superusers see every tenant."""
    tenants = list(tenant_list()) if request.user.is_authenticated and request.user.is_superuser else None
    return render(request, "tenants/console.html", {"tenants": tenants, "port": request.get_port()})
