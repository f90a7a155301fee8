from django.contrib import admin
from django.db import connection
from django_tenants.utils import get_public_schema_name

from tenants.models import Domain, Tenant


class PublicOnlyAdmin(admin.ModelAdmin):
    """Tenant rows live in the public schema and are the operator's alone: a tenant's own staff
    never see them, even though `public` is on every tenant's search path."""

    def has_module_permission(self, request):
        return connection.schema_name == get_public_schema_name() and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    has_change_permission = has_view_permission

    def has_add_permission(self, request):
        return False  # tenants are created by the provisioning service (tenant_create)

    def has_delete_permission(self, request, obj=None):
        return False  # tenant_delete drops the schema; the admin must not orphan one


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(PublicOnlyAdmin):
    list_display = ["slug", "name", "schema_name", "created_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["schema_name", "slug", "created_at"]
    inlines = [DomainInline]
