"""Credits (billing.metering.credits): burning at ingestion and the thresholds it crosses (burn),
grants, allowances and expiry (grants), and the tenant's price tables, requirements and alerts
(tables). Callers import from here."""

from billing.metering.credits.burn import (
    GrantReferenceReused,
    InvalidCredits,
    _accounts_create_missing,
    _accounts_for_update,
    _announce,
    _invalidate,
    _usable,
    burn_order,
    credits_burn,
    credits_to_micros,
)
from billing.metering.credits.grants import (
    credit_grant_create,
    credits_allowance_for,
    credits_allowance_renew,
    credits_allowances_renew,
    credits_expire,
)
from billing.metering.credits.tables import (
    ai_price_create,
    burn_rate_create,
    credit_alert_create,
    credit_requirement_set,
)

__all__ = [
    "GrantReferenceReused",
    "InvalidCredits",
    "_accounts_create_missing",
    "_accounts_for_update",
    "_announce",
    "_invalidate",
    "_usable",
    "ai_price_create",
    "burn_order",
    "burn_rate_create",
    "credit_alert_create",
    "credit_grant_create",
    "credit_requirement_set",
    "credits_allowance_for",
    "credits_allowance_renew",
    "credits_allowances_renew",
    "credits_burn",
    "credits_expire",
    "credits_to_micros",
]
