"""A bounded log of a tenant's recent integrator API calls, for the Developers page's explorer.

What is kept per call: method, path (no query string), status, duration, the calling key's public
prefix, the Idempotency-Key, the time and an optional short note a view attaches (ingestion's
accepted/duplicate/rejected counts). Never a body, a header's value or a secret.

Off the hot path: a request only appends the entry to an in-process buffer (a lock and a list
append); a daemon thread of the process writes the buffer to Redis every REQUEST_LOG_FLUSH_SECONDS
in one pipeline (LPUSH + LTRIM per tenant, so each tenant's list holds at most REQUEST_LOG_MAX
entries, and expires when the tenant stops calling). A debugging aid, not an audit log: entries
still buffered when a process dies, or written while Redis is down, are dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict, deque

import orjson
from django.conf import settings

from kernel.redis import REDIS_ERRORS, get_redis, key_prefix, trip, warn_throttled

logger = logging.getLogger(__name__)
NOTE_ATTRIBUTE = "request_log_note"
TTL_SECONDS = 7 * 24 * 3600

_buffer: deque[tuple[str, bytes]] = deque()
_lock = threading.Lock()
_flush_lock = threading.Lock()  # one flush at a time: a flush that returns has written all before it
_flusher_pid: int | None = None


def _key(schema: str) -> str:
    return f"{key_prefix()}:reqlog:{schema}"


def request_log_note(request, note: dict) -> None:
    """Attach a short, secret-free note (counts, codes) to the call's log entry."""
    setattr(getattr(request, "_request", request), NOTE_ATTRIBUTE, note)


def request_log_append(*, schema: str, entry: dict) -> None:
    """Buffer one entry (called by the middleware; costs no I/O)."""
    data = orjson.dumps(entry)
    with _lock:
        _buffer.append((schema, data))
        while len(_buffer) > settings.REQUEST_LOG_BUFFER_MAX:  # Redis slow or down: keep the newest
            _buffer.popleft()
    _flusher_ensure()


def _flusher_ensure() -> None:
    global _flusher_pid
    pid = os.getpid()
    if _flusher_pid == pid:
        return
    with _lock:
        if _flusher_pid == pid:
            return
        _flusher_pid = pid  # a forked worker starts its own thread (threads do not survive a fork)
    threading.Thread(target=_flush_forever, name="request-log-flusher", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(settings.REQUEST_LOG_FLUSH_SECONDS)
        try:
            request_log_flush()
        except Exception:  # the thread must survive anything; the log is best effort
            logger.exception("request log flush failed")


def request_log_flush() -> int:
    """Write the buffered entries to Redis now; returns how many were written."""
    with _flush_lock:
        return _flush()


def _flush() -> int:
    with _lock:
        batch = list(_buffer)
        _buffer.clear()
    if not batch:
        return 0
    per_schema: dict[str, list[bytes]] = defaultdict(list)
    for schema, data in batch:
        per_schema[schema].append(data)
    try:
        pipe = get_redis().pipeline(transaction=False)
        for schema, entries in per_schema.items():
            key = _key(schema)
            # only the newest REQUEST_LOG_MAX can survive the trim: send no more (a busy second
            # costs the flusher a bounded amount of work)
            pipe.lpush(key, *entries[-settings.REQUEST_LOG_MAX :])  # newest first
            pipe.ltrim(key, 0, settings.REQUEST_LOG_MAX - 1)
            pipe.expire(key, TTL_SECONDS)
        pipe.execute()
    except REDIS_ERRORS as exc:
        trip(exc)
        warn_throttled("request-log", "request log dropped %s entries: %r", len(batch), exc)
        return 0
    return len(batch)


def request_log_recent(*, schema: str, limit: int) -> list[dict]:
    """The tenant's newest entries first (at most `limit`); empty when Redis is unavailable."""
    try:
        rows = get_redis().lrange(_key(schema), 0, max(0, limit - 1))
    except REDIS_ERRORS as exc:
        trip(exc)
        return []
    return [orjson.loads(row) for row in rows]


def request_log_entry(request, response, *, started: float, elapsed_ms: float) -> dict:
    """The entry for one call: only what the explorer shows, nothing from bodies or secrets."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    secret = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    entry = {
        "at": round(started, 3),
        "method": request.method,
        "path": request.path[:300],
        "status": response.status_code,
        "ms": round(elapsed_ms, 2),
        # the key's public prefix (the first 12 characters, as stored beside its hash)
        "key": secret[:12] if secret.startswith("mk_") and len(secret) > 12 else "",
        "idempotency_key": request.META.get("HTTP_IDEMPOTENCY_KEY", "")[:100],
    }
    note = getattr(request, NOTE_ATTRIBUTE, None)
    if note:
        entry["note"] = note
    return entry
