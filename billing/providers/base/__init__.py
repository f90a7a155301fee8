"""The payment provider protocol: our own types, amounts in integer minor units.

Only `billing/providers/<name>.py` talks to a provider SDK. Each adapter maps its provider's
objects and errors onto these: `ProviderUnavailable` is retryable (network, 5xx, rate limits),
`ProviderError` is not (bad request, auth), `WebhookVerificationFailed` is a bad signature.
"""

from billing.providers.base.calls import (
    BalanceEntry,
    CatalogPrice,
    CheckoutRequest,
    CheckoutSession,
    ConnectOnboarding,
    ConnectOnboardingRequest,
    CouponTerms,
    ProductMapping,
    RefundResult,
    SavedMethodCharge,
    Transfer,
    TransferResult,
    UsageReport,
)
from billing.providers.base.errors import (
    CouponConflict,
    CouponNotSupported,
    ProviderError,
    ProviderNotConfigured,
    ProviderNotSupported,
    ProviderUnavailable,
    WebhookIgnored,
    WebhookVerificationFailed,
)
from billing.providers.base.events import (
    CheckoutState,
    ConnectedAccountState,
    EventType,
    InvoiceLineState,
    InvoiceState,
    InvoiceStatus,
    NormalizedEvent,
    PaymentState,
    PayoutReport,
    SubscriptionState,
)
from billing.providers.base.protocols import (
    PaymentProvider,
    ProviderCatalog,
    SubscriptionEngine,
)

__all__ = [
    "BalanceEntry",
    "CatalogPrice",
    "CheckoutRequest",
    "CheckoutSession",
    "CheckoutState",
    "ConnectOnboarding",
    "ConnectOnboardingRequest",
    "ConnectedAccountState",
    "CouponConflict",
    "CouponNotSupported",
    "CouponTerms",
    "EventType",
    "InvoiceLineState",
    "InvoiceState",
    "InvoiceStatus",
    "NormalizedEvent",
    "PaymentProvider",
    "PaymentState",
    "PayoutReport",
    "ProductMapping",
    "ProviderCatalog",
    "ProviderError",
    "ProviderNotConfigured",
    "ProviderNotSupported",
    "ProviderUnavailable",
    "RefundResult",
    "SavedMethodCharge",
    "SubscriptionEngine",
    "SubscriptionState",
    "Transfer",
    "TransferResult",
    "UsageReport",
    "WebhookIgnored",
    "WebhookVerificationFailed",
]
