"""Shared bench plumbing: Django setup, a bench tenant, a gunicorn server, wrk, percentiles.

Bench scripts print their figures beside a baseline measured in the same run; absolute numbers
move with the machine, the ratios are what to compare.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")
    import django

    django.setup()


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(fn, n: int) -> list[float]:
    """Call fn n times; the durations in ms."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples_ms: list[float]) -> str:
    return (
        f"n={len(samples_ms):>6}  mean={statistics.fmean(samples_ms):7.3f} ms  "
        f"p50={percentile(samples_ms, 50):7.3f} ms  p99={percentile(samples_ms, 99):7.3f} ms"
    )


def bench_tenant(slug: str = "bench") -> tuple[object, str, str]:
    """(tenant, host, fresh integrator key) for a tenant reserved for benches."""
    from django_tenants.utils import tenant_context

    from accounts.services import api_key_create, tenant_provision
    from tenants.selectors import tenant_get_by_slug

    tenant = tenant_get_by_slug(slug=slug)
    if tenant is None:
        result = tenant_provision(slug=slug, name="Bench", domain=f"{slug}.localhost")
        return result.tenant, result.domain, result.api_key_secret
    with tenant_context(tenant):
        _, secret = api_key_create(name="bench")
    return tenant, tenant.get_primary_domain().domain, secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# gunicorn reads this instead of gunicorn.conf.py: the same settings, plus a hook that tells the
# harness when each worker has loaded the app. The listening socket answers as soon as the master
# binds it, seconds before a worker (busy importing Django on a loaded machine) serves anything; a
# measurement started then times the import.
_BENCH_CONFIG = """
import pathlib

exec(compile(pathlib.Path({conf!r}).read_text(), {conf!r}, "exec"))


def post_worker_init(worker):
    pathlib.Path({ready!r}, str(worker.pid)).touch()
"""

_SERVERS: dict[str, tuple[int, list[int]]] = {}  # base URL -> (master pid, worker pids)


@contextlib.contextmanager
def gunicorn(
    *,
    workers: int = 2,
    extra_env: dict | None = None,
    access_log: str | None = None,
    args: list[str] | None = None,
    app: str = "monetize.wsgi",
):
    """Serve the app (`app`: another WSGI module, e.g. bench._bare_wsgi) on a free port; yields its base URL once every worker has loaded the app. With
    `access_log`, each request is logged as "<path> <status> <microseconds spent in the server>"
    (gunicorn's %(D)s). BENCH_GUNICORN_ARGS adds gunicorn options (e.g. "--worker-class gthread
    --threads 4") to compare server setups. `server_cpu_seconds(base)` reads the server's CPU time."""
    port = free_port()
    log_args = (
        ["--access-logfile", access_log, "--access-logformat", "%(U)s %(s)s %(D)s"] if access_log else []
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monetize.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    ready = tempfile.mkdtemp(prefix="bench-gunicorn-")
    config = Path(ready) / "config.py"
    config.write_text(_BENCH_CONFIG.format(conf=str(ROOT / "gunicorn.conf.py"), ready=ready))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--config", str(config), "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", *log_args, *(args or []),
         *os.environ.get("BENCH_GUNICORN_ARGS", "").split()],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            pids = [int(name) for name in os.listdir(ready) if name.isdigit()]
            if len(pids) >= workers:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.1)
        _SERVERS[base] = (process.pid, pids)
        yield base
    finally:
        _SERVERS.pop(base, None)
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(ready, ignore_errors=True)


def web_shape() -> tuple[int, int]:
    """(worker processes, threads each) as scripts/web.sh serves by default: WEB_CONCURRENCY
    (default: one more than the cores this process may run on, at most 8) and WEB_THREADS (default 1)."""
    workers = os.environ.get("WEB_CONCURRENCY") or min(len(os.sched_getaffinity(0)) + 1, 8)
    return int(workers), int(os.environ.get("WEB_THREADS") or 1)


@contextlib.contextmanager
def granian(
    *,
    workers: int = 2,
    threads: int = 1,
    extra_env: dict | None = None,
    access_log: str | None = None,
    app: str = "monetize.wsgi:application",
):
    """The app under Granian (WSGI interface, `threads` blocking threads per worker), as
    scripts/web.sh serves it, on a free port; yields its base URL once every worker has loaded the
    app. With `access_log`, each request is logged as "<path> <status> <milliseconds in the
    server>" (Granian's dt_ms: from the call into the app until the response is handed back)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monetize.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    log_args = ["--access-log", "--access-log-fmt", "%(path)s %(status)d %(dt_ms).3f"] if access_log else []
    # Granian logs to stdout, its "Started worker-N" lines (every worker imported the app) too
    log = access_log or tempfile.NamedTemporaryFile(prefix="bench-granian-", suffix=".log", delete=False).name
    output = open(log, "a")  # noqa: SIM115  (closed below; appends: a reader may truncate it)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws",
         "--log-level", "info", *log_args, app],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while Path(log).read_text().count("Started worker") < workers:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("granian did not start: " + Path(log).read_text()[-2000:])
            time.sleep(0.1)
        _SERVERS[base] = (process.pid, _children(process.pid))
        yield base
    finally:
        _SERVERS.pop(base, None)
        process.terminate()
        process.wait(timeout=30)
        output.close()
        if not access_log:
            os.unlink(log)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(base: str) -> float:
    """CPU time the server at `base` (gunicorn's master and its workers) has used so far. On a
    shared machine, CPU time per request moves much less with the neighbours' load than
    requests/s does."""
    master, workers = _SERVERS[base]
    return sum(_cpu_seconds(pid) for pid in (master, *workers))


def worker_cpu_seconds(base: str) -> list[float]:
    """CPU time each worker of the server at `base` has used so far (how evenly they shared the load)."""
    return [_cpu_seconds(pid) for pid in _SERVERS[base][1]]


def ensure_wrk() -> str | None:
    path = shutil.which("wrk")
    if path is None and os.geteuid() == 0:
        print("installing wrk (apt) for load generation ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if shutil.which("wrk") is None:
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        path = shutil.which("wrk")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, headers: dict[str, str], seconds: int = 5, connections: int = 8, threads: int = 1,
        lua: str | None = None) -> dict:  # fmt: skip
    """Run wrk against url; returns requests/s, p50/p99 in ms, non-2xx count, the number of
    requests and wrk's CPU seconds."""
    binary = ensure_wrk()
    if binary is None:
        raise SystemExit("wrk is needed for the HTTP figures: apt-get install wrk")
    command = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if lua:
        command += ["-s", lua]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))

    def ms(text: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        return float(number) * _UNITS[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": rps,
        "p50": ms(latencies["50"]),
        "p99": ms(latencies["99"]),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "requests": requests,
        # wrk's own CPU time (it shares the cores with the server in these benches)
        "client_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def fmt_http(name: str, result: dict) -> str:
    return (
        f"{name:<34} {result['rps']:>9.0f} req/s   p50 {result['p50']:7.2f} ms   p99 {result['p99']:7.2f} ms"
        + (f"   non-2xx {result['non2xx']}" if result["non2xx"] else "")
    )


def server_side_ms(access_log: str, path: str, *, unit_ms: float = 0.001) -> list[float]:
    """Server-side durations (ms) of the logged requests to `path`; `unit_ms`: the logged figure's
    unit (gunicorn's %(D)s: microseconds; Granian's dt_ms: 1.0)."""
    samples = []
    with open(access_log) as log:
        for line in log:
            parts = line.split()
            if len(parts) == 3 and parts[0] == path:
                samples.append(float(parts[2]) * unit_ms)
    return samples


def wrk_post_lua(path: str, bodies: list[str], headers: dict[str, str]) -> str:
    """A wrk script that POSTs the given JSON bodies round-robin. The requests are formatted once
    per wrk thread (init), not once per request: wrk shares the cores with the server here (measured
    side by side: 44-45 us of wrk's CPU a request against 45-49 us formatting each one)."""
    import json
    import tempfile

    header_table = (
        "{"
        + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
        + ", ['Content-Type'] = 'application/json'}"
    )
    lines = ["local bodies = {"] + [f"  {json.dumps(b)}," for b in bodies] + ["}"]
    lines += [
        "local requests, i = {}, 0",
        "init = function(args)",
        "  for n, body in ipairs(bodies) do",
        f"    requests[n] = wrk.format('POST', {json.dumps(path)}, {header_table}, body)",
        "  end",
        "end",
        "request = function()",
        "  i = i % #requests + 1",
        "  return requests[i]",
        "end",
    ]
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    handle.write("\n".join(lines))
    handle.close()
    return handle.name
