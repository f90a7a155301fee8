import re

from tenants.exceptions import TenantValidationError

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
RESERVED_SLUGS = frozenset(
    {
        "public", "www", "admin", "api", "app", "static", "media", "mail", "smtp", "ftp", "root",
        "postgres", "information-schema", "template", "tenant-template", "monetize", "status",
        "health", "webhooks", "docs", "console", "operator", "billing", "accounts", "test",
    }
)  # fmt: skip


def validate_slug(slug: str) -> str:
    """Lowercase letters, digits and inner hyphens, 3–40 characters, starting with a letter."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or "--" in slug:
        raise TenantValidationError(
            "Slug must be 3-40 characters of lowercase letters, digits and single hyphens, "
            "starting with a letter and not ending with a hyphen.",
            details={"field": "slug", "value": slug},
        )
    if slug in RESERVED_SLUGS or slug.startswith("pg-"):
        raise TenantValidationError(f"Slug '{slug}' is reserved.", details={"field": "slug", "value": slug})
    return slug


def validate_domain(domain: str) -> str:
    domain = (domain or "").strip().lower()
    if not DOMAIN_RE.match(domain):
        raise TenantValidationError(f"'{domain}' is not a valid host name.", details={"field": "domain"})
    return domain


def schema_name_for(slug: str) -> str:
    return slug.replace("-", "_")
