from kernel.errors import ApplicationError


class MembershipsError(ApplicationError):
    code = "memberships_error"


class CustomerNotFound(MembershipsError):
    code = "unknown_customer"
    status_code = 404


class InvalidProviderEvent(MembershipsError):
    """A verified provider event that can never be applied as it stands (unknown price, variant,
    status …): a permanent error. The inbox parks it as `unmatched` at once, without retries;
    staff fix the mapping and replay it."""

    code = "invalid_provider_event"


class CustomerUnmatched(InvalidProviderEvent):
    """A provider subscription or payment names none of our customers: no metadata, no known
    provider customer id, no single customer with its email."""

    code = "customer_unmatched"


class CheckoutInvalid(MembershipsError):
    code = "invalid_checkout"


class PriceNotSupportedByProvider(CheckoutInvalid):
    """The provider cannot bill this price's model (Polar and Lemon Squeezy sell one fixed amount:
    no tiers, packages or metered usage); refused before the provider is called."""

    code = "price_not_supported_by_provider"
    status_code = 422


class MembershipNotLive(MembershipsError):
    code = "membership_not_live"
    status_code = 409


class MembershipNotFound(MembershipsError):
    code = "unknown_membership"
    status_code = 404


class PaymentCustomerUnknown(MembershipsError):
    """A provider payment names only the provider's customer or subscription, and no membership
    links it to ours yet (its subscription event is still on the way): the inbox retries it, and after
    its last attempt it is dead. `awaits`, when set, is the provider's id of a charge a refund or
    dispute waits for: once the retries are spent the inbox parks it `unmatched` naming that charge,
    and applies it again when the charge is recorded."""

    code = "payment_customer_unknown"
    status_code = 409

    def __init__(self, message: str, *, awaits: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.awaits = awaits


class NoDiscount(MembershipsError):
    code = "no_discount"
    status_code = 404
