from kernel.errors import ApplicationError


class AccountsError(ApplicationError):
    code = "accounts_error"


class ApiKeyInactive(AccountsError):
    code = "api_key_inactive"
    status_code = 409


class InvalidScopes(AccountsError):
    code = "invalid_scopes"
