"""Redis cache of entitlement snapshots, one per customer, with race-free invalidation.

A reader does one round trip (`GET snapshot`, plus the customer's and the tenant's version numbers
in the same pipeline). On a miss it builds the snapshot from PostgreSQL and stores it with a small
Lua compare-and-set that succeeds only if neither version moved meanwhile, so a snapshot read
before a concurrent change can never be written after that change's invalidation.
Invalidation bumps the version and deletes the snapshot (per customer), or bumps the tenant's
generation and unlinks every snapshot of the tenant (catalog changes).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection

from monetize.metrics import REDIS_FALLBACKS
from monetize.redis import get_redis, key_prefix, trip

_CAS = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] and (redis.call('GET', KEYS[2]) or '0') == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
  return 1
end
return 0
"""
_cas_script = None


def _base() -> str:
    return f"{key_prefix()}:{connection.schema_name}"


def _keys(customer: str) -> tuple[str, str, str]:
    base = _base()
    return f"{base}:entv:{customer}", f"{base}:entgen", f"{base}:ent:{customer}"


class Miss:
    """A cache miss, carrying the versions to compare-and-set against (None: Redis is down)."""

    def __init__(self, versions: tuple[str, str] | None):
        self.versions = versions


def read(customer: str) -> dict | Miss:
    version_key, gen_key, snapshot_key = _keys(customer)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.get(snapshot_key)
        pipe.get(version_key)
        pipe.get(gen_key)
        raw, version, gen = pipe.execute()
    except Exception as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="entitlements").inc()
        return Miss(None)
    if raw is not None:
        return json.loads(raw)
    return Miss(((version or b"0").decode(), (gen or b"0").decode()))


def store(customer: str, snapshot: dict, miss: Miss, ttl: int) -> None:
    global _cas_script
    if miss.versions is None or ttl <= 0:
        return
    try:
        client = get_redis()
        if _cas_script is None:
            _cas_script = client.register_script(_CAS)
        _cas_script(
            keys=list(_keys(customer)), args=[*miss.versions, json.dumps(snapshot), ttl], client=client
        )
    except Exception as exc:
        trip(exc)


def invalidate(customer: str) -> None:
    version_key, _, snapshot_key = _keys(customer)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(version_key)
        pipe.expire(version_key, settings.ENTITLEMENT_CACHE_SECONDS * 2)
        pipe.delete(snapshot_key)
        pipe.execute()
    except Exception as exc:
        trip(exc)


def invalidate_all() -> None:
    _, gen_key, _ = _keys("*")
    try:
        client = get_redis()
        client.incr(gen_key)
        batch = []
        for key in client.scan_iter(match=f"{_base()}:ent:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    except Exception as exc:
        trip(exc)
