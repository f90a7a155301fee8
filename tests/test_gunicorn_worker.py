"""The Procfile's worker class shares keep-alive connections out evenly between gunicorn's workers
(monetize.gunicorn_worker). Plain gthread leaves it to whichever worker calls accept() first, and
with a few long-lived clients one worker often held them all (issue 10 item 14: checks/s ranged
1,385-3,898 on 2 cores depending on that draw)."""

import http.client
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from monetize import gunicorn_worker
from monetize.gunicorn_worker import BalancedThreadWorker

ROOT = Path(__file__).resolve().parent.parent
WORKER_CLASS = os.environ.get("TEST_GUNICORN_WORKER_CLASS", "monetize.gunicorn_worker.BalancedThreadWorker")


def pid_app(environ, start_response):
    """A WSGI app that answers with the pid of the worker serving it."""
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def _serve(tmp_path, *, workers: int, threads: int):
    from bench._harness import free_port
    from tests.conftest import _wait_for_port

    port = free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "tests.test_gunicorn_worker:pid_app", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--worker-class", WORKER_CLASS, "--threads", str(threads),
             "--keep-alive", "30"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        time.sleep(1)  # every worker booted and polling
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def served(tmp_path):
    with _serve(tmp_path, workers=2, threads=4) as server:
        yield server


@pytest.fixture
def one_thread(tmp_path):
    """One worker with one thread: whatever holds that thread holds every client."""
    with _serve(tmp_path, workers=1, threads=1) as server:
        yield server


def _pid_of(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    return int(response.read())


@pytest.mark.server
def test_keep_alive_clients_are_shared_out_evenly_between_the_workers(served):
    port, log = served
    clients = []
    for _ in range(12):  # one after another, each kept open, as a connection pool grows
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        clients.append((conn, _pid_of(conn)))
    held = Counter(pid for _, pid in clients)
    assert sorted(held.values()) == [6, 6], (held, log.read_text()[-2000:])

    # every connection keeps its worker, and every one is still served
    for conn, pid in clients:
        assert _pid_of(conn) == pid

    # clients leave: the worker left with fewer connections takes the next ones
    leaving = [c for c in clients if c[1] == clients[0][1]][:4]
    for conn, _ in leaving:
        conn.close()
    time.sleep(0.5)  # the worker's loop notices the hang-ups
    staying = [c for c in clients if c not in leaving]
    for _ in range(4):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        staying.append((conn, _pid_of(conn)))
    assert sorted(Counter(pid for _, pid in staying).values()) == [6, 6]
    for conn, _ in staying:
        conn.close()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _worker(*, slot: int, conns: int) -> BalancedThreadWorker:
    worker = BalancedThreadWorker.__new__(BalancedThreadWorker)  # the balancing rule alone, no server
    worker.slot, worker.nr_conns, worker.pid = slot, conns, os.getpid()
    return worker


def test_a_worker_holds_back_only_for_a_live_worker_holding_fewer_connections():
    table = gunicorn_worker._table
    table[:] = bytes(len(table))
    try:
        other = os.getppid()  # a live process standing for the other worker
        gunicorn_worker._write(1, other, 3)
        assert _worker(slot=0, conns=3).fair()  # as many: both accept
        assert not _worker(slot=0, conns=4).fair()  # more: leave it to the other
        # a worker killed without clearing its slot never makes the others hold back
        dead = _dead_pid()
        gunicorn_worker._write(2, dead, 0)
        assert _worker(slot=0, conns=3).fair()
        assert gunicorn_worker._read(2) == (0, 0)
    finally:
        table[:] = bytes(len(table))


def test_a_killed_worker_is_replaced_and_new_clients_are_still_served(served):
    port, log = served
    first = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    victim = _pid_of(first)
    first.close()
    os.kill(victim, signal.SIGKILL)  # its slot is never cleared by the worker itself
    clients, pids = [], set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(pids) < 2:  # kept open: the next goes to the other worker
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        clients.append(conn)
        pids.add(_pid_of(conn))
        time.sleep(0.1)
    for conn in clients:
        conn.close()
    assert victim not in pids and len(pids) == 2, log.read_text()[-2000:]


@pytest.mark.server
def test_an_idle_keep_alive_client_does_not_hold_the_thread(one_thread):
    """A browser keeps its connection open after a page: the thread that served it waits at most
    KEEPALIVE_WAIT_MS for a next request, then leaves the connection to the poller."""
    port, log = one_thread
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    _pid_of(idle)  # answered, then kept open and quiet
    other = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    _pid_of(other)
    assert time.monotonic() - started < 1.0, log.read_text()[-2000:]
    assert _pid_of(idle)  # and the quiet one is still served when it speaks again
    idle.close()
    other.close()


@pytest.mark.server
def test_back_to_back_requests_on_one_connection_are_each_answered(one_thread):
    """Requests that follow each other at once are served on the same thread (a turn of up to
    KEEPALIVE_TURN), including POSTs whose body the app never reads (gunicorn drains it), and a
    second client speaking in between is served too."""
    port, log = one_thread
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    other = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pids = set()
    for i in range(3 * gunicorn_worker.KEEPALIVE_TURN):
        busy.request("POST", "/", body=b"x" * (i * 100), headers={"Content-Type": "text/plain"})
        response = busy.getresponse()
        assert response.status == 200
        pids.add(int(response.read()))
        if i % gunicorn_worker.KEEPALIVE_TURN == 0:
            pids.add(_pid_of(other))
    assert len(pids) == 1, log.read_text()[-2000:]
    busy.close()
    other.close()


class _Sock:
    def __init__(self):
        self.sends = []

    def sendall(self, data):
        self.sends.append(bytes(data))


class _Req:
    version = (1, 1)

    def __init__(self, method="POST"):
        self.method = method

    def should_close(self):
        return False


def _respond(method="POST", headers=(("Content-Type", "application/json"),), body=b'{"allowed":true}'):
    from gunicorn.config import Config

    sock = _Sock()
    response = gunicorn_worker.OneSendResponse(_Req(method), sock, Config())
    response.start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
    response.write(body)
    response.close()
    return sock.sends


def test_a_small_response_leaves_in_one_send_with_its_headers():
    """gunicorn sends the status line and headers, then the body: two system calls and two TCP
    segments for every check. The balanced worker sends them together."""
    (sent,) = _respond()
    head, body = sent.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 16" in head
    assert b"Connection: keep-alive" in head and body == b'{"allowed":true}'


def test_bodies_gunicorn_frames_itself_are_written_as_gunicorn_writes_them():
    (head_only,) = _respond(method="HEAD")  # no body on the wire for HEAD
    assert head_only.endswith(b"\r\n\r\n") and b"allowed" not in head_only
    sock = _Sock()
    from gunicorn.config import Config

    chunked = gunicorn_worker.OneSendResponse(_Req(), sock, Config())
    chunked.start_response("200 OK", [("Content-Type", "text/plain")])  # no length: chunked
    chunked.write(b"abc")
    chunked.close()
    assert (
        chunked.chunked
        and sock.sends[0].endswith(b"\r\n\r\n")
        and sock.sends[1:] == [b"3\r\nabc\r\n", b"0\r\n\r\n"]
    )
