"""The layout's navigation: which links each persona sees (a context processor, so every page built
on templates/base.html gets `nav` without its view knowing about it).

Personas: staff (owner, admin, finance, support), creator, customer, anonymous visitor, and the
operator on the public schema's host. Add a page here once and it appears in every layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.urls import NoReverseMatch, reverse

from accounts.roles import STAFF_ROLES, Role


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    active: bool = False


# (label, url name, who sees it); a url name the urlconf lacks is skipped (pages land one by one)
_STAFF = "staff"
_OWNER = "owner"
_TENANT_LINKS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("Overview", "dashboard", frozenset({_STAFF, Role.CREATOR})),
    ("Customers", "customers", frozenset({_STAFF})),
    ("Invoices", "staff-invoices", frozenset({_STAFF})),
    ("Usage", "tenant-usage", frozenset({_STAFF})),
    ("Reconciliation", "staff-reconciliation", frozenset({_STAFF})),
    ("Creators", "staff-creators", frozenset({_STAFF})),
    ("Creator", "creator-dashboard", frozenset({Role.CREATOR})),
    ("Plan & usage", "plan", frozenset({Role.CUSTOMER, Role.CREATOR})),
    ("Billing", "customer-billing", frozenset({Role.CUSTOMER, Role.CREATOR})),
    ("Supporting", "fan-supporting", frozenset({Role.CUSTOMER})),
    ("Pricing", "pricing", frozenset({_STAFF, Role.CUSTOMER, Role.CREATOR, "anonymous"})),
    ("Catalog", "catalog", frozenset({Role.OWNER, Role.ADMIN, "superuser"})),
    ("Developers", "developers", frozenset({Role.OWNER, Role.ADMIN, Role.SUPPORT, "superuser"})),
    ("Settings", "tenant-settings", frozenset({_OWNER})),
    ("API docs", "api-docs", frozenset({_STAFF, "anonymous"})),
)


def persona(request) -> str:
    """operator | staff | creator | customer | anonymous."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None and tenant.schema_name == "public":
        return "operator"
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "anonymous"
    if user.is_superuser or user.role in STAFF_ROLES:
        return "staff"
    return user.role


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def nav_links(request) -> list[Link]:
    who = persona(request)
    if who == "operator":
        items = [("Tenants", _url("console")), ("Admin", "/admin/")]
    else:
        user = getattr(request, "user", None)
        groups = {who}
        if who == "staff":
            groups.add(user.role)
            if user.is_superuser:
                groups.add("superuser")
            if user.is_superuser or user.role == Role.OWNER:
                groups.add(_OWNER)
        items = [(label, _url(name)) for label, name, seen_by in _TENANT_LINKS if groups & seen_by]
    path = request.path
    links = []
    for label, url in items:
        if url is None:
            continue
        # the longest matching prefix wins ("/" never marks everything active)
        active = path == url or (url != "/" and path.startswith(url))
        links.append(Link(label, url, active))
    # one active link at most: the most specific
    actives = [link for link in links if link.active]
    if len(actives) > 1:
        best = max(actives, key=lambda link: len(link.url))
        links = [Link(link.label, link.url, link is best) for link in links]
    return links


def navigation(request) -> dict:
    """Context processor: `nav` (links for this persona) and `persona`, both lazy (the template calls
    them), so a page that never shows the navigation (the error pages) never loads the user."""
    return {"nav": partial(nav_links, request), "persona": partial(persona, request)}
