"""The Redis cache in front of integrator key lookups.

Entries are keyed by the key's hash under the active tenant's schema (django-tenants' cache key
function), so a lookup on tenant B can never see tenant A's key. If Redis is down every call
degrades to "miss" and the database answers.
"""

import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
MISSING = "missing"


def _key(hashed: str) -> str:
    return f"ik:{hashed}"


def get(hashed: str):
    try:
        return cache.get(_key(hashed))
    except Exception:  # Redis unavailable: the database is the source of truth
        logger.warning("api key cache unavailable", exc_info=True)
        return None


def put(hashed: str, value) -> None:
    timeout = settings.API_KEY_CACHE_SECONDS if value != MISSING else 30
    try:
        cache.set(_key(hashed), value, timeout=timeout)
    except Exception:
        logger.warning("api key cache unavailable", exc_info=True)


def forget(hashed: str) -> None:
    try:
        cache.delete(_key(hashed))
    except Exception:
        logger.warning("api key cache unavailable", exc_info=True)


def claim_touch(key_id: int) -> bool:
    """True at most once per API_KEY_LAST_USED_RESOLUTION_SECONDS per key: the caller then writes
    `last_used_at`. Without Redis, never (a missed timestamp beats a write on every request)."""
    try:
        return bool(cache.add(f"iku:{key_id}", 1, timeout=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS))
    except Exception:
        return False
