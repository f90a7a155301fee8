"""Writes for users and integrator API keys."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.exceptions import ApiKeyInactive, InvalidScopes
from accounts.keys import key_generate, key_hash, key_prefix
from accounts.models import ApiKeyScope, IdempotencyRecord, IntegratorApiKey, User
from accounts.roles import Role
from kernel import keycache
from tenants.models import Tenant
from tenants.services import tenant_create

logger = logging.getLogger(__name__)


def user_create(*, email: str, password: str | None, role: str = Role.CUSTOMER, name: str = "") -> User:
    user = User.objects.create_user(email=email, password=password, role=role, name=name)
    if password is None:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _clean_scopes(scopes: list[str] | None) -> list[str]:
    scopes = list(dict.fromkeys(scopes or [ApiKeyScope.READ, ApiKeyScope.WRITE]))
    unknown = [s for s in scopes if s not in ApiKeyScope.values]
    if unknown or not scopes:
        raise InvalidScopes(
            f"Scopes must be a non-empty subset of {ApiKeyScope.values}.", details={"unknown": unknown}
        )
    return scopes


def api_key_create(
    *, name: str, scopes: list[str] | None = None, mode: str | None = None, created_by: User | None = None
) -> tuple[IntegratorApiKey, str]:
    """Create a key in the active tenant. Returns the row and the secret, which is never stored."""
    mode = mode or settings.MONETIZE_KEY_MODE
    raw = key_generate(mode=mode)
    api_key = IntegratorApiKey.objects.create(
        name=name.strip() or "API key",
        prefix=key_prefix(raw),
        key_hash=key_hash(raw),
        mode=mode,
        scopes=_clean_scopes(scopes),
        created_by=created_by,
    )
    return api_key, raw


def api_key_revoke(*, api_key: IntegratorApiKey) -> IntegratorApiKey:
    """Revoke at once. Revoking a revoked key changes nothing."""
    with transaction.atomic():
        api_key = IntegratorApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
        keycache.forget_on_commit("ik", api_key.key_hash)
    return api_key


def api_key_rotate(
    *, api_key: IntegratorApiKey, grace_seconds: int | None = None, created_by: User | None = None
) -> tuple[IntegratorApiKey, str]:
    """Issue a successor with the same name and scopes; the old key keeps working for the grace
    period (API_KEY_ROTATION_GRACE_SECONDS by default, 0 = stop now) and then expires."""
    grace = settings.API_KEY_ROTATION_GRACE_SECONDS if grace_seconds is None else max(0, grace_seconds)
    with transaction.atomic():
        old = IntegratorApiKey.objects.select_for_update().get(pk=api_key.pk)
        if not old.is_usable() or old.rotated_to_id:
            raise ApiKeyInactive("Only an active key that has not been rotated yet can be rotated.")
        new, raw = api_key_create(name=old.name, scopes=old.scopes, mode=old.mode, created_by=created_by)
        expires = timezone.now() + dt.timedelta(seconds=grace)
        old.expires_at = min(old.expires_at, expires) if old.expires_at else expires
        old.rotated_to = new
        old.save(update_fields=["expires_at", "rotated_to"])
        keycache.forget_on_commit("ik", old.key_hash)
    return new, raw


def api_keys_last_used_flush() -> int:
    """Move the last-used times recorded in Redis into `last_used_at` (integrator and customer
    keys of the active tenant). Runs every minute from beat; returns the number of keys updated."""
    from django.apps import apps

    updated = 0
    for kind, model in (("ik", IntegratorApiKey), ("ck", apps.get_model("entitlements", "CustomerApiKey"))):
        used = keycache.take_used(kind)
        if not used:
            continue
        table = connection.ops.quote_name(model._meta.db_table)
        values = ", ".join(["(%s, to_timestamp(%s))"] * len(used))
        params = [item for pair in used.items() for item in pair]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS k SET last_used_at = v.at FROM (VALUES {values}) AS v(hash, at) "
                "WHERE k.key_hash = v.hash AND (k.last_used_at IS NULL OR k.last_used_at < v.at)",
                params,
            )
            updated += cursor.rowcount
    return updated


def idempotency_purge(*, now: dt.datetime | None = None) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    domain: str
    owner: User | None
    api_key: IntegratorApiKey
    api_key_secret: str


def tenant_provision(
    *,
    slug: str,
    name: str,
    domain: str | None = None,
    owner_email: str | None = None,
    owner_password: str | None = None,
) -> ProvisionedTenant:
    """Create a tenant (cloned schema), its owner login and a first integrator API key.

    The owner and the key are written in the new schema right after the clone; if that fails the
    tenant is deleted again, so a half-provisioned tenant is never left behind.
    """
    tenant = tenant_create(slug=slug, name=name, domain=domain)
    try:
        with tenant_context(tenant), transaction.atomic():
            owner = None
            if owner_email:
                owner = user_create(email=owner_email, password=owner_password, role=Role.OWNER, name="Owner")
            api_key, secret = api_key_create(name="Default", created_by=owner)
    except Exception:
        from tenants.services import tenant_delete

        tenant_delete(tenant=tenant)
        raise
    return ProvisionedTenant(
        tenant=tenant,
        domain=tenant.get_primary_domain().domain,
        owner=owner,
        api_key=api_key,
        api_key_secret=secret,
    )
