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


class PrivateRedis:
    """A redis-server of our own on a free port, for fault injection: stop() freezes it (SIGSTOP,
    connections hang as with a stalled server), cont() resumes it. Never touch the shared Redis."""

    def __init__(self) -> None:
        import socket
        import subprocess
        import time

        import redis

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                probe.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        probe.close()

    def stop(self) -> None:
        import signal

        self.process.send_signal(signal.SIGSTOP)

    def cont(self) -> None:
        import signal

        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.cont()
        self.process.kill()
        self.process.wait(timeout=10)
