"""A newcomer's first hour (issue 10): `make run` on a chosen PORT, then the README's curl examples
pasted as they are, a `manage.py` command that finds the same database through `.env`, and `make stop`.
The examples are read from the README itself (its fenced sh blocks that use curl)."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import _test_database_url

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.server, pytest.mark.django_db, pytest.mark.timeout(420)]


def readme_curl_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## After `make run`") : text.index("## Tour")]
    return [block for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S) if "curl" in block]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


@pytest.fixture
def make_run(django_db_setup, django_db_blocker, tmp_path):
    """`scripts/dev.sh run` (what `make run` does) on the test database and Redis, on a free port,
    with its .env and pid file in tmp_path instead of the developer's own."""
    from bench._harness import free_port

    port = free_port()
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")},
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "PORT": str(port),
        "MONETIZE_ENV_FILE": str(tmp_path / ".env"),
        "MONETIZE_RUN_PIDFILE": str(tmp_path / "run.pid"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
        "STOP_SERVICES": "0",  # the suite's PostgreSQL/Redis keep running
    }
    (tmp_path / "prometheus").mkdir()
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "scripts/dev.sh", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-4000:])
            time.sleep(0.5)
        yield port, env, tmp_path, process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        from django_tenants.utils import get_tenant_model

        from tenants.services import tenant_delete
        from tests.helpers import committed

        with django_db_blocker.unblock():
            demo = get_tenant_model().objects.filter(slug="demo").first()
            if demo is not None:
                committed(lambda: tenant_delete(tenant=demo))


def test_readme_examples_work_when_pasted_after_make_run_and_make_stop_stops_it(make_run):
    port, env, workdir, process, log = make_run
    dotenv = (workdir / ".env").read_text()
    assert f"PORT={port}" in dotenv and "MONETIZE_API_KEY=mk_test_" in dotenv
    assert f"http://demo.localhost:{port}/" in log.read_text()  # what make run prints follows PORT

    blocks = readme_curl_blocks()
    assert blocks, "no curl examples found in the README"
    # the blocks as pasted, each curl's answer on a line of its own; a non-2xx answer stops the block
    prelude = 'set -e\ncurl() { command curl -sS --fail-with-body --max-time 30 "$@"; echo; }\n'
    shell_env = {k: v for k, v in os.environ.items() if k not in ("PORT", "MONETIZE_API_KEY")}
    answers = []
    for block in blocks:
        out = subprocess.run(
            ["bash", "-c", prelude + block], cwd=workdir, env=shell_env, capture_output=True, text=True, timeout=120
        )  # fmt: skip
        assert out.returncode == 0, f"{block}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        answers += [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    me, customer, ingested, usage, check, quote, invoices = answers
    assert me["tenant"]["slug"] == "demo"
    assert customer["external_id"] == "user_42"
    assert ingested["inserted"] == 1 and not ingested["rejected"]
    assert usage["total"] and usage["total"] >= 12  # the event just sent counts this month
    assert check["feature"] == "build_minutes" and "allowed" in check
    assert quote["amount"] == 109_900 and len(quote["breakdown"]) == 2  # $999 incl. 50,000 + 10,000 at 1¢
    assert invoices["results"] == [] and invoices["next"] is None

    # a manage.py command finds make run's database through .env (DATABASE_URL not exported)
    manage_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    manage_env["MONETIZE_ENV_FILE"] = str(workdir / ".env")
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "tenant_list", "--json"],
        cwd=ROOT, env=manage_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert '"demo"' in listed.stdout

    stop = subprocess.run(
        ["bash", "scripts/dev.sh", "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert stop.returncode == 0, stop.stderr
    process.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(port)
