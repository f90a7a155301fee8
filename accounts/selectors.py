"""Reads for users and integrator API keys."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.keys import key_hash, key_looks_valid
from accounts.models import IntegratorApiKey
from kernel import keycache


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Who is calling the API: an integrator key, as cached (no ORM object on the hot path)."""

    id: int
    name: str
    prefix: str
    mode: str
    scopes: tuple[str, ...]
    expires_at: float | None  # epoch seconds

    is_authenticated = True
    is_anonymous = False

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _entry_from_row(row: IntegratorApiKey) -> dict:
    return {
        "id": row.pk,
        "name": row.name,
        "prefix": row.prefix,
        "mode": row.mode,
        "scopes": list(row.scopes),
        "expires_at": row.expires_at.timestamp() if row.expires_at else None,
    }


def api_key_authenticate(*, raw_key: str, cached: dict | None = None) -> ApiKeyPrincipal | None:
    """The active tenant's usable key for this secret, or None. Redis first, then PostgreSQL.
    `cached` is the key's cache entry when the caller already read it (a hot path's script)."""
    if not key_looks_valid(raw_key):
        return None
    hashed = key_hash(raw_key)
    entry = cached if cached is not None else keycache.lookup("ik", hashed)
    if entry is None:
        row = IntegratorApiKey.objects.filter(key_hash=hashed, revoked_at__isnull=True).first()
        entry = _entry_from_row(row) if row else keycache.MISSING
        keycache.put("ik", hashed, entry)
    if entry.get("missing"):
        return None
    if entry["expires_at"] is not None and entry["expires_at"] <= time.time():
        return None
    return ApiKeyPrincipal(
        id=entry["id"],
        name=entry["name"],
        prefix=entry["prefix"],
        mode=entry["mode"],
        scopes=tuple(entry["scopes"]),
        expires_at=entry["expires_at"],
    )


def api_key_list() -> QuerySet[IntegratorApiKey]:
    return IntegratorApiKey.objects.select_related("created_by", "rotated_to")
