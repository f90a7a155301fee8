"""Redis cache for lookups of hashed secrets (integrator keys, customer keys).

One pipelined round trip reads the cached entry and claims the "last used" marker (`SET NX EX`),
so tracking `last_used_at` costs nothing extra on the hot path. Keys carry the tenant's schema and
the secret's hash, so a lookup on tenant B can never see tenant A's entry. If Redis is down every
call degrades to "miss" and PostgreSQL answers (last-used is then not tracked: a missed timestamp
beats a write on every request).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection

from monetize.metrics import REDIS_FALLBACKS
from monetize.redis import get_redis, key_prefix, trip

MISSING = {"missing": True}
MISSING_SECONDS = 30


def _key(kind: str, hashed: str) -> str:
    return f"{key_prefix()}:{connection.schema_name}:{kind}:{hashed}"


def lookup(kind: str, hashed: str) -> tuple[dict | None, bool]:
    """(cached entry or None, whether this request should write last_used_at)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.get(_key(kind, hashed))
        pipe.set(_key(kind + "u", hashed), 1, nx=True, ex=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
        raw, claimed = pipe.execute()
    except Exception as exc:  # Redis unavailable: the database is the source of truth
        trip(exc)
        REDIS_FALLBACKS.labels(component="keys").inc()
        return None, False
    return (json.loads(raw) if raw is not None else None), bool(claimed)


def put(kind: str, hashed: str, entry: dict) -> None:
    timeout = MISSING_SECONDS if entry is MISSING else settings.API_KEY_CACHE_SECONDS
    try:
        get_redis().set(_key(kind, hashed), json.dumps(entry), ex=timeout)
    except Exception as exc:
        trip(exc)


def forget(kind: str, hashed: str) -> None:
    try:
        get_redis().delete(_key(kind, hashed))
    except Exception as exc:
        trip(exc)


def forget_on_commit(kind: str, hashed: str) -> None:
    """Forget now (later reads in this transaction go to PostgreSQL) and again on commit (a
    concurrent reader may have cached the pre-commit row in between)."""
    from django.db import transaction

    forget(kind, hashed)
    transaction.on_commit(lambda: forget(kind, hashed))
