from kernel.errors import ApplicationError

__all__ = ["ApplicationError", "TenantExists", "TenantValidationError"]


class TenantValidationError(ApplicationError):
    code = "invalid_tenant"


class TenantExists(ApplicationError):
    code = "tenant_exists"
    status_code = 409
