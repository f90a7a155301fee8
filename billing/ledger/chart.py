"""The chart of accounts: which codes exist and of what kind. An account is created on first use;
a code the chart does not know is refused (a typo must not open an account).

    cash:<provider>            asset      money held at a provider (cash:stripe, cash:sandbox)
    receivable                 asset      invoiced, not yet collected
    deferred_revenue           liability  invoiced for service not yet delivered
    tax_payable                liability  tax invoiced, owed to tax authorities
    revenue                    revenue    recognized revenue
    refunds                    revenue    contra-revenue: money returned to customers
    chargebacks                expense    disputes lost
    provider_fees              expense    what providers keep
    bad_debt                   expense    receivables written off (invoices marked uncollectible)
    platform_fees              revenue    the tenant's cut of creator earnings
    creator_share              expense    creators' part of their sales and tips (gross, before fees)
    tips                       revenue    tips paid to creators (gross)
    payouts_in_transit         liability  creators' payouts requested, not yet reported paid
    payable:creator:<handle>   liability  owed to a creator, available
    payable:creator_pending:<handle>  liability  owed to a creator, still in the hold period
    equity                     equity     opening balances and owner's adjustments
"""

from __future__ import annotations

import re

from billing.ledger.models import AccountKind

FIXED = {
    "receivable": (AccountKind.ASSET, "Accounts receivable"),
    "deferred_revenue": (AccountKind.LIABILITY, "Deferred revenue"),
    "tax_payable": (AccountKind.LIABILITY, "Tax payable"),
    "revenue": (AccountKind.REVENUE, "Revenue"),
    "refunds": (AccountKind.REVENUE, "Refunds (contra-revenue)"),
    "chargebacks": (AccountKind.EXPENSE, "Chargebacks"),
    "provider_fees": (AccountKind.EXPENSE, "Provider fees"),
    "bad_debt": (AccountKind.EXPENSE, "Bad debt"),
    "platform_fees": (AccountKind.REVENUE, "Platform fees"),
    "creator_share": (AccountKind.EXPENSE, "Creators' share of sales and tips"),
    "tips": (AccountKind.REVENUE, "Tips"),
    "payouts_in_transit": (AccountKind.LIABILITY, "Payouts in transit"),
    "equity": (AccountKind.EQUITY, "Equity"),
}
PREFIXED = {
    "cash": (AccountKind.ASSET, "Cash at {}"),
    "payable:creator": (AccountKind.LIABILITY, "Payable to creator {}"),
    "payable:creator_pending": (AccountKind.LIABILITY, "Payable to creator {} (held)"),
}
_PART = re.compile(r"^[a-z0-9_.-]{1,80}$")


def account_kind(code: str) -> tuple[str, str] | None:
    """(kind, name) of an account code, or None when the chart has no such account."""
    if code in FIXED:
        return FIXED[code]
    for prefix, (kind, name) in PREFIXED.items():
        if code.startswith(prefix + ":"):
            rest = code[len(prefix) + 1 :]
            if _PART.match(rest):
                return kind, name.format(rest)
    return None
