"""One redis-py client per process for the hot paths that need more than Django's cache API
(pipelines, Lua scripts), with a small circuit breaker.

When Redis fails, callers fall back to PostgreSQL; the breaker then skips Redis for
REDIS_BREAKER_SECONDS so that an outage costs one connect timeout per process, not one per request.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)
_open_until = 0.0


class RedisUnavailable(Exception):
    """Redis is down or the breaker is open; use the fallback."""


# What a fallback may catch. Never a bare Exception: a bug in our own code must surface as a 500,
# not quietly turn into "Redis is down" (which would, say, fail rate limits open).
REDIS_ERRORS = (redis.exceptions.RedisError, RedisUnavailable, OSError)


def make_client(url: str) -> redis.Redis:
    """Fail fast: no retries, short timeouts -- the caller has a fallback."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.25,
        socket_timeout=0.25,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return make_client(settings.CACHES["default"]["LOCATION"])


def get_redis() -> redis.Redis:
    if time.monotonic() < _open_until:
        raise RedisUnavailable("circuit open")
    return _client()


def trip(exc: BaseException | None = None) -> None:
    """Record a failure: skip Redis for a while."""
    global _open_until
    _open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
    logger.warning("redis unavailable, using PostgreSQL for %ss: %r", settings.REDIS_BREAKER_SECONDS, exc)


def reset() -> None:
    global _open_until
    _open_until = 0.0


def key_prefix() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "monetize")
