from monetize.errors import ApplicationError


class MembershipsError(ApplicationError):
    code = "memberships_error"


class CustomerNotFound(MembershipsError):
    code = "unknown_customer"
    status_code = 404
