"""Helpers for tests that need work committed on other connections (concurrency, workers)."""

import threading
from collections.abc import Callable

from django.db import connections


def run_parallel(fn: Callable[[int], object], n: int) -> list:
    """Run fn(0..n-1) in n threads released together; each thread has its own DB connection,
    which autocommits, so the calls really contend. Exceptions are re-raised."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def committed(fn: Callable[[], object]) -> object:
    """Run fn on a fresh connection outside the test's transaction (sees and makes committed rows)."""
    return run_parallel(lambda i: fn(), 1)[0]
