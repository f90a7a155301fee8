"""A browser that idles on a page and then clicks gets its page (issue 10 item 14). Chromium keeps
idle (and speculative, never-used) connections open; gunicorn's sync workers serve one connection at a
time, so those connections held every worker until the worker timeout killed it ("WORKER TIMEOUT … no
URI read") and the click got "Internal Server Error". The Procfile's `web:` command (what `make run`
starts) serves with threads that tolerate keep-alive; this test runs that exact command."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser.conftest import launch, needs_chromium
from tests.conftest import _test_database_url, _wait_for_port

ROOT = Path(__file__).resolve().parent.parent.parent
IDLE_SECONDS = int(os.environ.get("KEEPALIVE_IDLE_SECONDS", "60"))
pytestmark = [
    pytest.mark.server,
    pytest.mark.timeout(240),
    needs_chromium,
]


def procfile_web_command() -> str:
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    return line.removeprefix("web:").strip()


@pytest.fixture
def procfile_web(live_tenant, tmp_path):
    """The app served by the Procfile's `web:` command, as `make run` starts it (via honcho)."""
    from bench._harness import free_port

    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "monetize.settings_test",
        "DATABASE_URL": _test_database_url(),
    }
    log = tmp_path / "web.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {procfile_web_command()}"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        yield f"http://{live_tenant.host}:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_page_idle_for_a_minute_then_clicked_gets_its_page(procfile_web):
    from playwright.sync_api import sync_playwright

    server, log = procfile_web
    with sync_playwright() as playwright:
        # the browser's own background connections stay on here: idle connections are the point
        browser = launch(playwright, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--host-resolver-rules=MAP * 127.0.0.1"])  # fmt: skip
        try:
            page = browser.new_page()
            assert page.goto(f"{server}/pricing/").status == 200
            # what browsers do on their own (speculative connections, preconnect hints, keep-alive):
            # open connections to the origin that carry no request yet; the click will use one
            page.evaluate(
                """() => { for (const cors of [null, "anonymous"]) {
                    const link = document.createElement("link");
                    link.rel = "preconnect"; link.href = location.origin;
                    if (cors) link.crossOrigin = cors;
                    document.head.appendChild(link); } }"""
            )
            time.sleep(IDLE_SECONDS)
            with page.expect_navigation(timeout=60_000) as navigation:
                page.click("a[href*='/accounts/signup/']")
            response = navigation.value
            assert response.status == 200, (response.status, page.content()[:500])
            assert "Internal Server Error" not in page.content()
            assert re.search(r"name=.?password1", page.content())
        finally:
            browser.close()
    assert "WORKER TIMEOUT" not in log.read_text()


def test_connections_opened_ahead_and_left_idle_hold_no_worker(procfile_web):
    """The mechanism under the browser's symptom, made deterministic: two connections opened and left
    idle past gunicorn's worker timeout (30 s), as a browser's speculative connections are. Under sync
    workers each held a worker until WORKER TIMEOUT killed it and wrote "500 Internal Server Error" into
    the idle connection, which the browser then read as its next page."""
    import socket
    from urllib.parse import urlsplit

    import httpx

    server, log = procfile_web
    url = urlsplit(server)
    idle = [socket.create_connection(("127.0.0.1", url.port)) for _ in range(2)]
    time.sleep(40)
    for connection in idle:
        connection.settimeout(2)
        try:
            got = connection.recv(200)
        except TimeoutError:
            got = b""  # still open and quiet: fine
        assert b"500" not in got, got
        connection.close()
    response = httpx.get(f"http://127.0.0.1:{url.port}/pricing/", headers={"Host": url.hostname}, timeout=30)
    assert response.status_code == 200
    assert "WORKER TIMEOUT" not in log.read_text()
