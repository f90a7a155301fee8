"""Publishing a task after commit without ever failing (or stalling) the request that committed.

The work is already durable in PostgreSQL when we publish (an inbox row, a pending delivery); the
message only says "now". A broker that is down or frozen costs at most the publish timeouts in
settings (CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_TASK_PUBLISH_RETRY_POLICY), then the failure is
logged and counted and the beat sweeper of that work re-enqueues it.
"""

from __future__ import annotations

import logging

from kernel.metrics import ENQUEUE_FAILURES

logger = logging.getLogger(__name__)


def enqueue(task, *, args: tuple = (), countdown: int | None = None, fallback: str) -> bool:
    """task.apply_async(...); False (logged, counted) when the broker did not take it."""
    try:
        task.apply_async(args=list(args), countdown=countdown)
    except Exception:  # any broker failure (kombu/redis/socket errors vary by transport): never the request's
        ENQUEUE_FAILURES.labels(task=task.name).inc()
        logger.warning("could not enqueue %s%r; %s", task.name, tuple(args), fallback, exc_info=True)
        return False
    return True
