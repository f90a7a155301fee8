"""Billing: one Django app per sub-domain (tiers, memberships, entitlements, metering, payouts,
providers, webhooks). All of them are TENANT_APPS: a tenant's money lives in its own schema."""
