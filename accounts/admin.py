from django.contrib import admin, messages
from django.db import connection
from django.template.response import TemplateResponse
from django_tenants.utils import get_public_schema_name

from accounts.exceptions import AccountsError
from accounts.models import IdempotencyRecord, IntegratorApiKey, User
from accounts.services import api_key_create, api_key_revoke, api_key_rotate


def _in_tenant() -> bool:
    return connection.schema_name != get_public_schema_name()


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "role", "is_active", "date_joined", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "role", "is_active", "is_superuser", "date_joined", "last_login"]
    readonly_fields = ["date_joined", "last_login"]


@admin.register(IntegratorApiKey)
class IntegratorApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the service (the secret is shown once, on the next page)."""

    list_display = ["name", "prefix", "mode", "scopes", "status", "created_at", "last_used_at", "expires_at"]
    list_filter = ["mode"]
    search_fields = ["name", "prefix"]
    fields = ["name", "scopes", "mode"]
    actions = ["revoke", "rotate"]

    def has_module_permission(self, request):
        return _in_tenant() and super().has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return _in_tenant() and request.user.has_perm("accounts.view_integratorapikey")

    def save_model(self, request, obj, form, change):
        key, secret = api_key_create(name=obj.name, scopes=obj.scopes, mode=obj.mode, created_by=request.user)
        obj.pk = key.pk
        request._new_api_key_secrets = [(key.name, secret)]

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_secrets(request, request._new_api_key_secrets)

    def _show_secrets(self, request, secrets):
        response = TemplateResponse(
            request,
            "admin/accounts/api_key_created.html",
            {**self.admin_site.each_context(request), "secrets": secrets, "back": "../" if secrets else "."},
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys now")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(api_key=key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")

    @admin.action(description="Rotate selected keys (old ones expire after the grace period)")
    def rotate(self, request, queryset):
        secrets = []
        for key in queryset:
            try:
                new, secret = api_key_rotate(api_key=key, created_by=request.user)
            except AccountsError as exc:
                messages.error(request, f"{key}: {exc.message}")
                continue
            secrets.append((new.name, secret))
        return self._show_secrets(request, secrets) if secrets else None


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "method", "path", "status_code", "created_at", "expires_at"]
    search_fields = ["key", "path"]

    def has_module_permission(self, request):
        return _in_tenant() and super().has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
