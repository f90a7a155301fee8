"""The web server the Procfile runs by default (scripts/web.sh: Granian) under killed workers
(issue 10's fault injection): a killed worker is replaced, and a worker killed again right after
its replacement (which Granian answers by shutting the whole server down, its "crash loop" rule)
costs seconds of service, not the service: the script starts Granian again. TERM still stops it."""

import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench._harness import _children

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]


def _workers(script_pid: int) -> tuple[int, list[int]]:
    """(Granian's main process, its worker processes) under the script."""
    masters = _children(script_pid)
    assert len(masters) == 1, masters
    return masters[0], _children(masters[0])


def _served(port: int, host: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz", headers={"Host": host})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _wait_served(port: int, host: str, seconds: float = 90) -> float:
    started = time.monotonic()
    while not _served(port, host):
        assert time.monotonic() - started < seconds, "not served again"
        time.sleep(0.2)
    return time.monotonic() - started


def test_killed_workers_are_replaced_and_a_crash_loop_restarts_the_server(live_tenant, granian):
    port, log, script = granian
    master, workers = _workers(script.pid)
    assert len(workers) == 2 and _served(port, live_tenant.host)

    os.kill(workers[0], signal.SIGKILL)
    _wait_served(port, live_tenant.host)  # the other worker serves meanwhile
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current_master, current = _workers(script.pid)
        if len(current) == 2 and workers[0] not in current:
            break
        time.sleep(0.2)
    assert current_master == master and len(current) == 2 and workers[0] not in current, log.read_text()
    replacement = next(pid for pid in current if pid not in workers)

    os.kill(replacement, signal.SIGKILL)  # within Granian's 5.5 s: it stops the whole server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "starting it again" not in log.read_text():
        time.sleep(0.2)
    assert "starting it again" in log.read_text(), log.read_text()[-2000:]
    _wait_served(port, live_tenant.host)
    assert _workers(script.pid)[0] != master

    script.terminate()
    script.wait(timeout=30)  # TERM stops the script and Granian with it
    assert not _served(port, live_tenant.host)


def _shape(tmp_path, **env) -> tuple[int, int]:
    """(--workers, --blocking-threads) that scripts/web.sh starts Granian with, given env (a stand-in
    `granian` on PATH records its arguments and stops the script)."""
    bin_dir, recorded = tmp_path / "bin", tmp_path / "args"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "granian"
    fake.write_text(f'#!/bin/sh\necho "$@" > {recorded}\nkill -TERM $PPID\n')
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_SERVER")}
    script = Path(__file__).resolve().parent.parent / "scripts" / "web.sh"
    done = subprocess.run(
        ["bash", str(script)], env={**base, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    args = recorded.read_text().split()
    return int(args[args.index("--workers") + 1]), int(args[args.index("--blocking-threads") + 1])


def test_default_shape_is_one_thread_a_worker_and_a_worker_more_than_the_cores(tmp_path):
    """Threads of one worker hand the GIL back and forth on every request, which tripled a check's
    server-side p99 (bench/entitlements.py, granian@2x2 beside granian@2x1 and @3x1): by default a
    worker runs one thread, and there is a worker more than the cores (at most 8) so a request waiting on a
    provider leaves the cores served. Both are still the operator's to set."""
    assert _shape(tmp_path) == (min(len(os.sched_getaffinity(0)) + 1, 8), 1)
    assert _shape(tmp_path, WEB_CONCURRENCY="5", WEB_THREADS="3") == (5, 3)
