"""Tenant provisioning: the template schema, creating tenants by cloning it, deleting them.

New tenants are cloned from a migrated template schema (settings.TENANT_BASE_SCHEMA) with
django-tenants' `clone_schema` SQL function, structure *and* rows: the template holds the applied
migrations, content types and permissions, so a clone is a ready tenant with no migration run.
Everything runs in one transaction (PostgreSQL DDL is transactional): a failure leaves no schema,
no tenant row and no domain behind.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django_tenants.clone import CloneSchema
from django_tenants.utils import get_public_schema_name, schema_exists

from tenants.exceptions import ApplicationError, TenantExists
from tenants.models import Domain, Tenant
from tenants.validators import schema_name_for, validate_domain, validate_slug

logger = logging.getLogger(__name__)


def _quote(schema: str) -> str:
    return connection.ops.quote_name(schema)


def tenant_template_ensure(*, verbosity: int = 0) -> bool:
    """Create the template schema when missing and bring it to the latest migrations.

    Returns True when the schema had to be created. Safe to run on every deploy.
    """
    schema = settings.TENANT_BASE_SCHEMA
    created = False
    if not schema_exists(schema):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {_quote(schema)}")
        created = True
    call_command("migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()
    return created


def tenant_public_ensure(*, domain: str | None = None) -> Tenant:
    """The operator's row for the public schema, routed from the bare host (and 127.0.0.1)."""
    public, _ = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"slug": "public", "name": "Operator console"}
    )
    host = validate_domain(domain or settings.MONETIZE_PUBLIC_DOMAIN)
    for index, name in enumerate(dict.fromkeys([host, "127.0.0.1"])):
        Domain.objects.get_or_create(domain=name, defaults={"tenant": public, "is_primary": index == 0})
    return public


def tenant_create(*, slug: str, name: str, domain: str | None = None) -> Tenant:
    """Create a tenant, its primary domain and its schema (cloned from the template)."""
    validate_slug(slug)
    domain = validate_domain(domain or f"{slug}.{settings.MONETIZE_TENANT_DOMAIN_SUFFIX}")
    schema = schema_name_for(slug)
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        raise ApplicationError(
            f"The template schema '{template}' does not exist; run `manage.py tenants_migrate` first.",
            code="template_missing",
        )
    if Tenant.objects.filter(slug=slug).exists() or schema_exists(schema):
        raise TenantExists(f"A tenant '{slug}' already exists.", details={"field": "slug"})
    if Domain.objects.filter(domain=domain).exists():
        raise TenantExists(f"The domain '{domain}' is already routed.", details={"field": "domain"})

    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(schema_name=schema, slug=slug, name=name or slug)
            Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
            CloneSchema().clone_schema(template, schema, "DATA")
    except IntegrityError as exc:  # a concurrent create won the race for the slug or domain
        raise TenantExists(f"A tenant '{slug}' or domain '{domain}' already exists.") from exc
    finally:
        connection.set_schema_to_public()
    logger.info("tenant created slug=%s schema=%s domain=%s", slug, schema, domain)
    return tenant


def tenant_delete(*, tenant: Tenant) -> None:
    """Drop the tenant's schema with everything in it, then its rows. Irreversible."""
    if tenant.is_public:
        raise ApplicationError("The public schema cannot be deleted.", code="tenant_protected")
    connection.set_schema_to_public()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # fire deferred FK checks now: rows written earlier in this transaction would
            # otherwise leave "pending trigger events" that block the DROP
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP SCHEMA IF EXISTS {_quote(tenant.schema_name)} CASCADE")
        Domain.objects.filter(tenant=tenant).delete()
        Tenant.objects.filter(pk=tenant.pk).delete()
    logger.info("tenant deleted slug=%s schema=%s", tenant.slug, tenant.schema_name)


def tenant_settings_update(*, tenant: Tenant, rate_limit_failure_mode: str) -> Tenant:
    """Settings a tenant's owner controls (the row lives in the public schema)."""
    from tenants.middleware import tenant_cache_clear
    from tenants.models import FailureMode

    if rate_limit_failure_mode not in FailureMode.values:
        raise ApplicationError(
            "Unknown failure mode.", code="invalid_settings", details={"field": "rate_limit_failure_mode"}
        )
    Tenant.objects.filter(pk=tenant.pk).update(rate_limit_failure_mode=rate_limit_failure_mode)
    tenant.rate_limit_failure_mode = rate_limit_failure_mode
    tenant_cache_clear()
    return tenant
