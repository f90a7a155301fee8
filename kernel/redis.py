"""A redis-py client per thread for the hot paths that need more than Django's cache API
(pipelines, Lua scripts), with a small circuit breaker.

When Redis fails, callers fall back to PostgreSQL; the breaker then skips Redis for
REDIS_BREAKER_SECONDS so that an outage costs one connect timeout per process, not one per request.

The breaker has three states. Closed: every call goes to Redis (the check is one global read).
Open: calls raise RedisUnavailable("circuit open") without touching the network -- which is not a
Redis failure and never extends the open period. Half-open: once the cool-down has passed, the
first caller (one thread, under a lock) sends one PING as a probe; success closes the breaker and
runs the recovery hooks (kernel.invalidations drains what could not be invalidated meanwhile),
failure opens it for another cool-down. Warnings are logged once per transition, not per call.

Hand-written rather than pybreaker: pybreaker wraps each call (a lock and a state object per call),
while our hot paths split "get a client" from "report a failure" across Lua scripts and pipelines;
the closed state here costs one float comparison.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from functools import lru_cache

import orjson
import redis
from django.conf import settings
from django.core.signals import setting_changed
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)
_open_until = 0.0  # 0.0: closed; otherwise open until this monotonic time, then half-open
_probe_lock = threading.Lock()
_recovery_hooks: list[Callable[[], None]] = []
_throttled: dict[str, float] = {}


class RedisUnavailable(Exception):
    """Redis is down or the breaker is open; use the fallback."""


# What a fallback may catch. Never a bare Exception: a bug in our own code must surface as a 500,
# not quietly turn into "Redis is down" (which would, say, fail rate limits open).
REDIS_ERRORS = (redis.exceptions.RedisError, RedisUnavailable, OSError)


class KernelTimeoutConnection(redis.Connection):
    """A TCP connection whose timeouts the kernel keeps (SO_RCVTIMEO, SO_SNDTIMEO on a blocking
    socket) instead of Python: CPython polls a socket that has a timeout before every send and
    receive, two more system calls per command. A stalled Redis still fails the call after
    `socket_timeout` (as a ConnectionError rather than a TimeoutError: both are RedisErrors)."""

    def _connect(self):
        sock = super()._connect()
        if self.socket_timeout:
            kernel_timeouts(sock, self.socket_timeout)
        return sock


def kernel_timeouts(sock: socket.socket, timeout: float) -> None:
    """Make `sock` blocking with `timeout` kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO): a send
    or receive past it fails with an OSError, and Python polls nothing before each call."""
    whole = int(timeout)
    value = struct.pack("ll", whole, int((timeout - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)


_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25, "health_check_interval": 30}


def make_client(url: str) -> redis.Redis:
    """Fail fast: no retries, short timeouts -- the caller has a fallback."""
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **_OPTIONS)


def make_pool(url: str) -> redis.ConnectionPool:
    """The connections get_redis() clients take: redis:// URLs get KernelTimeoutConnection,
    unix:// and rediss:// keep redis-py's own classes."""
    return redis.ConnectionPool.from_url(
        url, connection_class=KernelTimeoutConnection, retry=Retry(NoBackoff(), 0), **_OPTIONS
    )


@lru_cache(maxsize=1)
def _pool() -> redis.ConnectionPool:
    return make_pool(settings.CACHES["default"]["LOCATION"])


_local = threading.local()


def _forget_after_fork() -> None:
    global _local
    _local = threading.local()  # a child must never use its parent's connection


os.register_at_fork(after_in_child=_forget_after_fork)


def _client() -> redis.Redis:
    """This thread's client, holding one connection of its own (single_connection_client): a
    command then skips the pool's checkout -- its lock, its bookkeeping and a poll() to see whether
    the connection has unread data -- which cost more CPU than the command's round trip. Made
    again in a forked child and when the pool changes (tests point it at a private server).
    Pipelines still take a pooled connection."""
    pool, held = _pool(), getattr(_local, "client", None)
    if held is None or held[0] is not pool:
        client = redis.Redis(connection_pool=pool, single_connection_client=True, retry=Retry(NoBackoff(), 0))
        held = _local.client = (pool, client)
    return held[1]


def get_redis() -> redis.Redis:
    if _open_until and not _probe():
        raise RedisUnavailable("circuit open")
    return _client()


def is_open() -> bool:
    return bool(_open_until)


def _probe() -> bool:
    """Half-open: after the cool-down one caller pings Redis; True when the breaker closed."""
    global _open_until
    if time.monotonic() < _open_until or not _probe_lock.acquire(blocking=False):
        return False
    try:
        if not _open_until:
            return True  # another thread's probe closed it meanwhile
        if time.monotonic() < _open_until:
            return False
        _open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS  # others skip while we probe
        try:
            _client().ping()
        except REDIS_ERRORS as exc:
            _open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
            warn_throttled("redis-probe", "redis still unavailable, using PostgreSQL: %r", exc)
            return False
        _open_until = 0.0
        logger.warning("redis answers again, circuit closed")
    finally:
        _probe_lock.release()
    for hook in list(_recovery_hooks):
        try:
            hook()
        except Exception:  # a recovery hook must never fail the request that probed
            logger.exception("redis recovery hook %r failed", hook)
    return True


def on_recovery(hook: Callable[[], None]) -> None:
    """Run `hook` in the process whenever its breaker closes again (after the probe succeeded)."""
    if hook not in _recovery_hooks:
        _recovery_hooks.append(hook)


def trip(exc: BaseException | None = None) -> None:
    """Record a Redis failure: skip Redis for a while. "Circuit open" is not a failure."""
    global _open_until
    if isinstance(exc, RedisUnavailable):
        return
    was_closed = not _open_until
    _open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
    if was_closed:
        logger.warning("redis unavailable, using PostgreSQL for %ss: %r", settings.REDIS_BREAKER_SECONDS, exc)


def warn_throttled(key: str, message: str, *args) -> None:
    """logger.warning at most once per REDIS_BREAKER_SECONDS per key (an outage must not log per call)."""
    now = time.monotonic()
    if now >= _throttled.get(key, 0.0):
        _throttled[key] = now + settings.REDIS_BREAKER_SECONDS
        logger.warning(message, *args)


def reset() -> None:
    global _open_until
    _open_until = 0.0
    _throttled.clear()


_key_prefix: str | None = None


def key_prefix() -> str:
    """Read from settings once (every hot-path key starts with it), again when CACHES changes."""
    global _key_prefix
    if _key_prefix is None:
        _key_prefix = settings.CACHES["default"].get("KEY_PREFIX", "monetize")
    return _key_prefix


def _forget_key_prefix(*, setting: str, **kwargs) -> None:
    global _key_prefix
    if setting == "CACHES":
        _key_prefix = None


setting_changed.connect(_forget_key_prefix)

# every ASCII digit to b"0", any other byte to itself: a run of 19 digits becomes 19 zeros
_DIGITS_AS_ZERO = bytes(ord("0") if 0x30 <= i <= 0x39 else i for i in range(256))
_LONG_DIGITS = b"0" * 19


def loads_stored(raw: bytes):
    """json.loads(raw) for JSON this app stored in Redis with json.dumps (cache entries read on
    the hot paths), through orjson: about three times faster. orjson refuses what json.dumps can
    write and it cannot (NaN, Infinity, lone surrogates) and reads an integer beyond 64 bits as a
    float, so such a document (it raises, or holds a run of 19+ digits) is read by json.loads as
    before. (The digit run is found with translate and a substring search: re's `\\d{19,}` cost
    as much as json.loads on a snapshot.)"""
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
