from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from tenants.models import Tenant


def tenant_list() -> QuerySet[Tenant]:
    """Every real tenant (not the operator's public row), with its domains."""
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).prefetch_related("domains")


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).filter(slug=slug).first()


def tenant_logo_png(*, tenant: Tenant) -> bytes | None:
    """The tenant's logo as the PNG we stored, or None."""
    from tenants.models import TenantLogo

    png = TenantLogo.objects.filter(tenant_id=tenant.pk).values_list("png", flat=True).first()
    return bytes(png) if png is not None else None


def tenant_logo_meta(*, tenant: Tenant) -> tuple | None:
    """(updated_at, width, height) of the tenant's logo, or None: what the layout needs, not the image."""
    from tenants.models import TenantLogo

    return TenantLogo.objects.filter(tenant_id=tenant.pk).values_list("updated_at", "width", "height").first()
