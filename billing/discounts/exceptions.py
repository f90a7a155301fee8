from kernel.errors import ApplicationError


class DiscountsError(ApplicationError):
    code = "invalid_coupon"


class CouponNotFound(DiscountsError):
    code = "unknown_coupon"
    status_code = 404


class CouponExists(DiscountsError):
    code = "coupon_exists"
    status_code = 409


class CouponUnusable(DiscountsError):
    """The coupon cannot be redeemed now: inactive, expired or used up (`code` says which)."""

    status_code = 409


class CouponExhausted(CouponUnusable):
    code = "coupon_exhausted"


class CouponExpired(CouponUnusable):
    code = "coupon_expired"


class CouponInactive(CouponUnusable):
    code = "coupon_inactive"


class CouponNotApplicable(DiscountsError):
    """The coupon exists and is redeemable, but not for this purchase (another tier, another
    currency)."""

    code = "coupon_not_applicable"
    status_code = 422
