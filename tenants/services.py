"""Tenant provisioning: the template schema, creating tenants by cloning it, deleting them.

New tenants are cloned from a migrated template schema (settings.TENANT_BASE_SCHEMA) with
django-tenants' `clone_schema` SQL function, structure *and* rows: the template holds the applied
migrations, content types and permissions, so a clone is a ready tenant with no migration run.
Everything runs in one transaction (PostgreSQL DDL is transactional): a failure leaves no schema,
no tenant row and no domain behind.

Cloning costs about 11 ms per table and grows with every app, so clones are made ahead of time:
a small pool of *spare* schemas (`tenant_spare_<hex>`, TENANT_SPARE_SCHEMAS of them, refilled by a
Celery task after each use and by beat) lets `tenant_create` simply rename one (a few ms). A spare
is used only if its applied migrations equal the template's; `tenants_migrate` drops all spares,
since they are clones of the old template. With no usable spare, the tenant is cloned inline.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django_tenants.clone import CloneSchema
from django_tenants.utils import get_public_schema_name, schema_exists

from kernel.enqueue import enqueue
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
            spare = _spare_take()
            if spare is not None:
                with connection.cursor() as cursor:
                    cursor.execute(f"ALTER SCHEMA {_quote(spare)} RENAME TO {_quote(schema)}")
            else:
                CloneSchema().clone_schema(template, schema, "DATA")
            transaction.on_commit(_spares_refill_later)
    except IntegrityError as exc:  # a concurrent create won the race for the slug or domain
        raise TenantExists(f"A tenant '{slug}' or domain '{domain}' already exists.") from exc
    finally:
        connection.set_schema_to_public()
    logger.info("tenant created slug=%s schema=%s domain=%s spare=%s", slug, schema, domain, spare)
    return tenant


# --- spare schemas ------------------------------------------------------------------------------

SPARE_PREFIX = "tenant_spare_"


def spare_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname", [SPARE_PREFIX + "%"]
        )
        return [row[0] for row in cursor.fetchall()]


def _same_migrations(schema: str) -> bool:
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {_quote(template)}.django_migrations t "
            f"FULL JOIN {_quote(schema)}.django_migrations s ON s.app = t.app AND s.name = t.name "
            "WHERE t.id IS NULL OR s.id IS NULL"
        )
        return cursor.fetchone()[0] == 0


def _spare_take() -> str | None:
    """A current spare, locked for this transaction (concurrent creations take different ones)."""
    for spare in spare_schemas():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [spare])
            if not cursor.fetchone()[0]:
                continue
        if not schema_exists(spare):  # renamed by a transaction that committed meanwhile
            continue
        if _same_migrations(spare):
            return spare
    return None


def spares_refill(*, count: int | None = None) -> int:
    """Clone the template until the pool holds `count` (TENANT_SPARE_SCHEMAS) spares; drop stale
    ones. Returns how many were created. Safe to run concurrently (an advisory lock serialises)."""
    import secrets

    target = settings.TENANT_SPARE_SCHEMAS if count is None else count
    connection.set_schema_to_public()
    created = 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('tenant_spares_refill'))")
            if not cursor.fetchone()[0]:
                return 0
        if not schema_exists(settings.TENANT_BASE_SCHEMA):
            return 0
        current = []
        for spare in spare_schemas():
            if _same_migrations(spare):
                current.append(spare)
            else:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP SCHEMA {_quote(spare)} CASCADE")
        for _ in range(max(0, target - len(current))):
            CloneSchema().clone_schema(
                settings.TENANT_BASE_SCHEMA, SPARE_PREFIX + secrets.token_hex(6), "DATA"
            )
            created += 1
    connection.set_schema_to_public()
    return created


def spares_drop() -> int:
    """Drop every spare (after migrations: they are clones of the old template)."""
    spares = spare_schemas()
    with transaction.atomic(), connection.cursor() as cursor:
        for spare in spares:
            cursor.execute(f"DROP SCHEMA IF EXISTS {_quote(spare)} CASCADE")
    return len(spares)


def _spares_refill_later() -> None:
    if settings.TENANT_SPARE_SCHEMAS <= 0:
        return
    from tenants.tasks import spares_refill_task

    enqueue(spares_refill_task, fallback="the beat entry (or the next tenants_migrate) refills the pool")


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


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    """Its site and API answer 403 `tenant_suspended` until resumed (within TENANT_CACHE_SECONDS in
    every process: the host lookup is cached). Nothing is deleted; provider webhooks still land in
    its inbox, so nothing a provider sends meanwhile is lost. Suspending twice keeps the first time."""
    from django.utils import timezone

    from tenants.middleware import tenant_cache_clear

    if tenant.is_public:
        raise ApplicationError("The operator's own schema cannot be suspended.", code="tenant_protected")
    Tenant.objects.filter(pk=tenant.pk, suspended_at__isnull=True).update(suspended_at=timezone.now())
    tenant.refresh_from_db(fields=["suspended_at"])
    tenant_cache_clear()
    logger.info("tenant suspended slug=%s", tenant.slug)
    return tenant


def tenant_resume(*, tenant: Tenant) -> Tenant:
    from tenants.middleware import tenant_cache_clear

    Tenant.objects.filter(pk=tenant.pk).update(suspended_at=None)
    tenant.suspended_at = None
    tenant_cache_clear()
    logger.info("tenant resumed slug=%s", tenant.slug)
    return tenant


def tenant_settings_update(
    *,
    tenant: Tenant,
    rate_limit_failure_mode: str,
    unknown_usage_customer: str | None = None,
    invoice_address: str | None = None,
    creator_fee_bps: int | None = None,
    earnings_hold_days: int | None = None,
    tip_min_amount: int | None = None,
    tip_max_amount: int | None = None,
    sandbox_fee_bps: int | None = None,
    payout_min_amount: int | None = None,
    payout_schedule: str | None = None,
    brand_color: str | None = None,
    support_email: str | None = None,
) -> Tenant:
    """Settings a tenant's owner controls (the row lives in the public schema). A setting left None
    is unchanged; a new platform fee applies to earnings from now on (each earning
    keeps the rate it was split at)."""
    from tenants.middleware import tenant_cache_clear
    from tenants.models import FailureMode, UnknownUsageCustomer

    if rate_limit_failure_mode not in FailureMode.values:
        raise ApplicationError(
            "Unknown failure mode.", code="invalid_settings", details={"field": "rate_limit_failure_mode"}
        )
    changes = {"rate_limit_failure_mode": rate_limit_failure_mode}
    if unknown_usage_customer is not None:
        if unknown_usage_customer not in UnknownUsageCustomer.values:
            raise ApplicationError(
                "Unknown choice.", code="invalid_settings", details={"field": "unknown_usage_customer"}
            )
        changes["unknown_usage_customer"] = unknown_usage_customer
    if invoice_address is not None:
        changes["invoice_address"] = invoice_address.strip()[:500]
    limits = {"creator_fee_bps": 10_000, "sandbox_fee_bps": 10_000, "earnings_hold_days": 365,
              "tip_min_amount": 10**12, "tip_max_amount": 10**12, "payout_min_amount": 10**12}  # fmt: skip
    for field, value in (
        ("creator_fee_bps", creator_fee_bps), ("earnings_hold_days", earnings_hold_days),
        ("tip_min_amount", tip_min_amount), ("tip_max_amount", tip_max_amount),
        ("sandbox_fee_bps", sandbox_fee_bps), ("payout_min_amount", payout_min_amount),
    ):  # fmt: skip
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limits[field]:
            raise ApplicationError(
                f"{field} is a whole number from 0 to {limits[field]}.",
                code="invalid_settings",
                details={"field": field},
            )
        changes[field] = value
    if payout_schedule is not None:
        if payout_schedule not in ("manual", "weekly", "monthly"):
            raise ApplicationError(
                "The payout schedule is manual, weekly or monthly.", code="invalid_settings",
                details={"field": "payout_schedule"},
            )  # fmt: skip
        changes["payout_schedule"] = payout_schedule
    if brand_color is not None:
        brand_color = brand_color.strip().lower()
        if brand_color and not re.fullmatch(r"#[0-9a-f]{6}", brand_color):
            raise ApplicationError(
                "A colour is #RRGGBB (six hex digits).",
                code="invalid_settings",
                details={"field": "brand_color"},
            )
        changes["brand_color"] = brand_color
    if support_email is not None:
        support_email = support_email.strip()
        try:
            if support_email:
                validate_email(support_email)
        except ValidationError as exc:
            raise ApplicationError(
                "The support address is not an email address.", code="invalid_settings",
                details={"field": "support_email"},
            ) from exc  # fmt: skip
        changes["support_email"] = support_email[:254]
    low = changes.get("tip_min_amount", tenant.tip_min_amount)
    high = changes.get("tip_max_amount", tenant.tip_max_amount)
    if low > high:
        raise ApplicationError(
            "The smallest tip is above the largest.",
            code="invalid_settings",
            details={"field": "tip_min_amount"},
        )
    Tenant.objects.filter(pk=tenant.pk).update(**changes)
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant_cache_clear()
    return tenant


LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIZE = (800, 300)


def tenant_logo_set(*, tenant: Tenant, data: bytes):
    """Store the invoice logo from an uploaded PNG, JPEG, GIF or WebP: decoded, scaled down to fit
    LOGO_MAX_SIZE and re-encoded as PNG. Anything else -- another format, a file too large, a
    decompression bomb, bytes that are no image -- is refused (ApplicationError `invalid_logo`)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    from tenants.models import TenantLogo

    def refuse(message: str):
        return ApplicationError(message, code="invalid_logo", details={"field": "logo"})

    if len(data) > LOGO_MAX_BYTES:
        raise refuse(f"The logo is too large: at most {LOGO_MAX_BYTES // 1024:,} KB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ("PNG", "JPEG", "GIF", "WEBP"):
                raise refuse("The logo must be a PNG, JPEG, GIF or WebP image.")
            if image.width * image.height > 25_000_000:
                raise refuse("The logo's dimensions are too large.")
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:  # fmt: skip
        raise refuse("The file is not an image we can read (PNG, JPEG, GIF or WebP).") from exc
    image = image.convert("RGBA")
    image.thumbnail(LOGO_MAX_SIZE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    logo, _ = TenantLogo.objects.update_or_create(
        tenant=tenant, defaults={"png": out.getvalue(), "width": image.width, "height": image.height}
    )
    return logo


def tenant_logo_remove(*, tenant: Tenant) -> bool:
    from tenants.models import TenantLogo

    deleted, _ = TenantLogo.objects.filter(tenant=tenant).delete()
    return bool(deleted)
