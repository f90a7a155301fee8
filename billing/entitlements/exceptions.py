from kernel.errors import ApplicationError


class EntitlementsError(ApplicationError):
    code = "entitlements_error"


class UnknownFeature(EntitlementsError):
    code = "unknown_feature"


class WrongFeatureKind(EntitlementsError):
    code = "wrong_feature_kind"


class LimitReached(EntitlementsError):
    code = "limit_reached"
    status_code = 409


class NotInTier(EntitlementsError):
    code = "not_in_tier"
    status_code = 403


class CounterUnderflow(EntitlementsError):
    code = "counter_underflow"
    status_code = 409


class LeaseNotFound(EntitlementsError):
    code = "unknown_lease"
    status_code = 404


class LeaseExpired(EntitlementsError):
    code = "lease_expired"
    status_code = 409


class CustomerKeyNotFound(EntitlementsError):
    code = "unknown_api_key"
    status_code = 404


class CustomerKeyInactive(EntitlementsError):
    code = "api_key_inactive"
    status_code = 409
