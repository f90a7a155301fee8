"""What adapters raise: `ProviderUnavailable` is retryable, the other `ProviderError`s are not."""

from __future__ import annotations

from kernel.errors import ApplicationError


class ProviderError(ApplicationError):
    code = "provider_error"
    status_code = 502


class ProviderUnavailable(ProviderError):
    """Retry later: the provider did not answer or asked us to slow down."""

    code = "provider_unavailable"
    status_code = 503


class ProviderNotConfigured(ProviderError):
    code = "provider_not_configured"
    status_code = 409


class ProviderNotSupported(ProviderError):
    """This adapter does not offer the operation (yet)."""

    code = "provider_not_supported"
    status_code = 409


class CouponNotSupported(ProviderError):
    """The provider cannot express this coupon for this price: refused before the provider is called."""

    code = "coupon_not_supported_by_provider"
    status_code = 422


class CouponConflict(ProviderError):
    """The provider holds a discount under our coupon's name with other terms: never given."""

    code = "coupon_conflict"
    status_code = 409


class WebhookVerificationFailed(ProviderError):
    code = "invalid_signature"
    status_code = 400


class WebhookIgnored(ProviderError):
    """A well-formed delivery of an event type we do not use: answered 200 so the provider stops
    retrying, and stored nowhere (nothing in it is acted on, so nothing needs authenticating)."""

    code = "webhook_ignored"
    status_code = 200
