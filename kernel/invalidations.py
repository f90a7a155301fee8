"""Cache invalidations that survive a Redis outage.

An invalidation that fails (Redis down or stalled, or the breaker open) is written to
`public.kernel_deferredinvalidation` in the same PostgreSQL transaction as the caller's (or, after
commit, on its own), instead of being dropped. replay() applies the rows and deletes them; it runs
in a process as soon as its breaker closes again (kernel.redis.on_recovery) and every few seconds
from beat (`kernel.invalidations_replay`), so a revoked key or a changed override is seen within
seconds of Redis answering again -- not after the cache TTL.

Handlers are registered by the caches that own the key layout (kernel.keycache, the entitlement
snapshot cache); each takes (schema, idents) and raises on Redis errors.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.db import connection, transaction

from kernel.metrics import REDIS_INVALIDATIONS_DEFERRED
from kernel.redis import REDIS_ERRORS, on_recovery

logger = logging.getLogger(__name__)
_handlers: dict[str, Callable[[str, list[str]], None]] = {}
TABLE = "public.kernel_deferredinvalidation"
REPLAY_BATCH = 5000


def register(kind: str, handler: Callable[[str, list[str]], None]) -> None:
    _handlers[kind] = handler


def defer(kind: str, idents: Iterable[str]) -> None:
    """Keep invalidations of `kind` for the current tenant schema until Redis takes them."""
    idents = list(dict.fromkeys(idents))
    if not idents:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (schema_name, kind, ident, created_at) "
            "SELECT %s, %s, unnest(%s::text[]), now() ON CONFLICT DO NOTHING",
            [connection.schema_name, kind, idents],
        )
    REDIS_INVALIDATIONS_DEFERRED.labels(kind=kind).inc(len(idents))


def replay() -> int:
    """Apply deferred invalidations; returns how many were applied. Rows whose Redis call fails stay."""
    applied = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, schema_name, kind, ident FROM {TABLE} ORDER BY id LIMIT %s "
                    "FOR UPDATE SKIP LOCKED",
                    [REPLAY_BATCH],
                )
                rows = cursor.fetchall()
            if not rows:
                return applied
            groups: dict[tuple[str, str], list[str]] = defaultdict(list)
            for _, schema, kind, ident in rows:
                groups[(schema, kind)].append(ident)
            try:
                for (schema, kind), idents in groups.items():
                    handler = _handlers.get(kind)
                    if handler is not None:
                        handler(schema, idents)
            except REDIS_ERRORS as exc:  # still unavailable: the rows stay for the next replay
                logger.warning("deferred cache invalidations not replayed yet: %r", exc)
                return applied
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [[row[0] for row in rows]])
        applied += len(rows)
        logger.info("replayed %s deferred cache invalidations", len(rows))
        if len(rows) < REPLAY_BATCH:
            return applied


on_recovery(replay)
