"""API permissions by integrator key scope; page permissions by role."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.exceptions import NotAuthenticated
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission


class InsufficientScope(ApiPermissionDenied):
    error_code = "insufficient_scope"


class _ScopePermission(BasePermission):
    required: str | None = None

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if principal is None or not hasattr(principal, "has_scope"):
            raise NotAuthenticated("An API key is required: `Authorization: Bearer mk_test_…`.")
        scope = self.required or ("read" if request.method in SAFE_METHODS else "write")
        if not principal.has_scope(scope):
            raise InsufficientScope(f"This key lacks the '{scope}' scope.")
        return True


class HasReadScope(_ScopePermission):
    """Safe methods need `read`, everything else `write` (the API's default)."""


class HasWriteScope(_ScopePermission):
    required = "write"


def role_required(*roles: str):
    """Page decorator: log in first, then the user's role must be one of `roles` (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not (user.is_superuser or user.role in roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
