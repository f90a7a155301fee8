from kernel.errors import ApplicationError


class CreatorError(ApplicationError):
    code = "creator_error"


class CreatorNotFound(CreatorError):
    code = "unknown_creator"
    status_code = 404


class CreatorExists(CreatorError):
    code = "creator_exists"
    status_code = 409


class CreatorInvalid(CreatorError):
    code = "invalid_creator"


class CreatorTierNotFound(CreatorError):
    code = "unknown_tier"
    status_code = 404


class CreatorTierInvalid(CreatorError):
    code = "invalid_tier"


class CreatorTierInUse(CreatorError):
    """A tier with live members is not deleted: it is unpublished (made private) instead."""

    code = "tier_in_use"
    status_code = 409


class OnboardingInvalid(CreatorError):
    code = "invalid_onboarding"


class TipInvalid(CreatorError):
    code = "invalid_tip"


class TipAmountOutOfRange(TipInvalid):
    code = "tip_amount_out_of_range"
    status_code = 422


class CreatorNotPayable(CreatorError):
    """A tip to a creator whose payout onboarding is not active."""

    code = "creator_not_payable"
    status_code = 409
