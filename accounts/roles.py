"""Roles inside a tenant and what each may do.

A user has exactly one role per tenant (users are per tenant schema). Django-admin permissions
(`app_label.action_model`) are derived from the role in code, so there are no per-schema Group rows
to keep in step:

| role     | tenant admin (`/admin/`)                            | pages                        |
|----------|-----------------------------------------------------|------------------------------|
| owner    | everything                                          | everything, integrator keys  |
| admin    | everything except integrator API keys               | staff pages                  |
| finance  | view everything, change billing                     | staff pages, money           |
| support  | view everything                                     | staff pages                  |
| creator  | -                                                   | own creator dashboard        |
| customer | -                                                   | own plan and billing         |
"""

from django.db import models

# the billing sub-apps (billing → accounts is the dependency direction, so named here, not imported)
BILLING_APP_LABELS = frozenset(
    {
        "tiers",
        "memberships",
        "entitlements",
        "metering",
        "payouts",
        "providers",
        "webhooks",
        "inbox",
        "invoicing",
    }
)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance"
    SUPPORT = "support", "Support"
    CREATOR = "creator", "Creator"
    CUSTOMER = "customer", "Customer"


STAFF_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE, Role.SUPPORT})
OWNER_ONLY_MODELS = frozenset({"integratorapikey"})


def role_has_perm(role: str, perm: str) -> bool:
    app_label, _, codename = perm.partition(".")
    action, _, model = codename.partition("_")
    if role == Role.OWNER:
        return True
    if role == Role.ADMIN:
        return model not in OWNER_ONLY_MODELS
    if role == Role.FINANCE:
        return action == "view" or app_label in BILLING_APP_LABELS
    if role == Role.SUPPORT:
        return action == "view"
    return False


def role_has_module_perms(role: str, app_label: str) -> bool:
    return role in STAFF_ROLES
