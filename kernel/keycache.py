"""Redis cache for lookups of hashed secrets (integrator keys, customer keys).

One pipelined round trip reads the cached entry and claims the "last used" marker (`SET NX EX`),
so tracking `last_used_at` costs nothing extra on the hot path. Keys carry the tenant's schema and
the secret's hash, so a lookup on tenant B can never see tenant A's entry. If Redis is down every
call degrades to "miss" and PostgreSQL answers (last-used is then not tracked: a missed timestamp
beats a write on every request).
"""

from __future__ import annotations

import json
import time
from functools import partial

from django.conf import settings
from django.db import connection

from kernel import invalidations, localcache
from kernel.metrics import REDIS_FALLBACKS
from kernel.redis import REDIS_ERRORS, get_redis, key_prefix, trip

MISSING = {"missing": True}
MISSING_SECONDS = 30


def _base() -> str:
    return f"{key_prefix()}:{connection.schema_name}"


# `base`: _base() when the caller already has it (a hot path builds several keys of one tenant)
def _key(kind: str, hashed: str, base: str | None = None) -> str:
    return f"{base or _base()}:{kind}:{hashed}"


def _used_key(kind: str, base: str | None = None) -> str:
    return f"{base or _base()}:{kind}:used"


def lookup(kind: str, hashed: str) -> dict | None:
    """The cached entry or None; records that the key was used now."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.get(_key(kind, hashed))
        pipe.hset(_used_key(kind), hashed, int(time.time()))
        raw, _ = pipe.execute()
    except REDIS_ERRORS as exc:  # Redis unavailable: the database is the source of truth
        trip(exc)
        REDIS_FALLBACKS.labels(component="keys").inc()
        return None
    return json.loads(raw) if raw is not None else None


_TAKE = """
local items = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return items
"""


def take_used(kind: str) -> dict[str, int]:
    """Atomically take the recorded {key hash: epoch seconds} of this tenant (for the flush job)."""
    items = get_redis().eval(_TAKE, 1, _used_key(kind))
    return {items[i].decode(): int(items[i + 1]) for i in range(0, len(items), 2)}


def put(kind: str, hashed: str, entry: dict) -> None:
    timeout = MISSING_SECONDS if entry is MISSING else settings.API_KEY_CACHE_SECONDS
    key = _key(kind, hashed)
    try:
        get_redis().set(key, json.dumps(entry), ex=timeout)
    except REDIS_ERRORS as exc:
        trip(exc)
    localcache.forget([key])  # this process's copy; Redis tells the others


def forget(kind: str, hashed: str) -> None:
    """Drop the cached entry; if Redis does not take it, kernel.invalidations keeps it for replay (a
    revoked key must not keep verifying from a stale entry once Redis answers again)."""
    key = _key(kind, hashed)
    try:
        get_redis().delete(key)
    except REDIS_ERRORS as exc:
        trip(exc)
        invalidations.defer(kind, [hashed])
    localcache.forget([key])


def _forget_deferred(schema: str, hashes: list[str], *, kind: str) -> None:
    keys = [f"{key_prefix()}:{schema}:{kind}:{hashed}" for hashed in hashes]
    get_redis().delete(*keys)
    localcache.forget(keys)


# what the check's local answers (kernel.localcache) record of a key's use: its second, at most
# once per USED_EVERY_SECONDS per key and process (the flush job folds the newest into
# last_used_at; a timestamp a few seconds old there costs nothing, a Redis write per check does)
USED_EVERY_SECONDS = 5
# the second each key's use was last written from this process; past USED_SENT_MAX keys it starts
# again from none (which costs one more write per key), so a process seeing many keys stays bounded
USED_SENT_MAX = 10_000
_used_sent: dict[tuple[str, str], int] = {}


def note_used(kind: str, hashed: str, now: float, base: str | None = None) -> None:
    used_key, second = _used_key(kind, base), int(now)
    sent = _used_sent.get((used_key, hashed))
    if sent is not None and 0 <= second - sent < USED_EVERY_SECONDS:
        return
    if sent is None and len(_used_sent) >= USED_SENT_MAX:
        _used_sent.clear()
    _used_sent[(used_key, hashed)] = second
    try:
        get_redis().hset(used_key, hashed, second)
    except REDIS_ERRORS as exc:
        trip(exc)


for _kind in ("ik", "ck"):
    invalidations.register(_kind, partial(_forget_deferred, kind=_kind))


def forget_on_commit(kind: str, hashed: str) -> None:
    """Forget now (later reads in this transaction go to PostgreSQL) and again on commit (a
    concurrent reader may have cached the pre-commit row in between)."""
    from django.db import transaction

    forget(kind, hashed)
    transaction.on_commit(lambda: forget(kind, hashed))
