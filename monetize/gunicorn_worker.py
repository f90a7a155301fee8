"""gunicorn's threaded worker, with connections shared out evenly between the workers.

Every gthread worker polls the one listening socket and the kernel wakes them all when a client
connects; whichever calls accept() first wins. Nothing makes that fair: with a handful of long-lived
(keep-alive) clients, such as a load balancer's pool, an SDK's session or a benchmark's connections,
one worker often wins them all and serves every request on one core under one GIL while the other
worker idles. Measured on 2 cores with 8 keep-alive clients: in the runs where one worker held all
8 connections, an entitlement check cost 717-808 us of CPU (its threads queueing on one GIL) against
464-505 us when the connections were split, and throughput ranged from 1,385 to 3,898 checks/s.

BalancedThreadWorker accepts a connection only while it holds no more connections than the least
loaded live worker; otherwise it leaves the connection to that worker (the socket is shared, so it
waits in the backlog for it) and stops polling the listener. The workers' counts sit in a small
anonymous shared mapping made in the master before it forks, a slot per worker. A worker that
holds back looks again every HOLD_POLL_SECONDS (a worker it deferred to may itself be holding back
on an older reading), and a slot whose process is gone is cleared, so a killed worker never leaves
a connection waiting. With one worker this is gunicorn's gthread exactly.

It also sends a response's status line and headers in the same send() as the first part of its
body (OneSendResponse): gunicorn sends them apart, two system calls and two TCP segments for every
small JSON answer, and the client wakes up twice to read them.

Use it as `--worker-class monetize.gunicorn_worker.BalancedThreadWorker` (the Procfile and
`make run` do).
"""

from __future__ import annotations

import mmap
import os
import select
import struct

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

SLOTS = 64
_SLOT = struct.Struct("qq")  # pid, connections held
_ALL = struct.Struct(f"{2 * SLOTS}q")  # the whole table in one read
HOLD_POLL_SECONDS = 0.02
KEEPALIVE_WAIT_MS = 2  # how long a thread waits on its connection for the client's next request
KEEPALIVE_TURN = 4  # requests one connection is served in a row before others get the thread

# Made when gunicorn's master loads the worker class, before any worker is forked: MAP_SHARED and
# anonymous, so every worker of this master reads and writes the same pages.
_table = mmap.mmap(-1, _ALL.size)


def _read(slot: int) -> tuple[int, int]:
    return _SLOT.unpack_from(_table, slot * _SLOT.size)


def _write(slot: int, pid: int, conns: int) -> None:
    _SLOT.pack_into(_table, slot * _SLOT.size, pid, conns)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid: not one of our workers
        return False
    return True


def _readable(sock, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout_ms))


class OneSendResponse(wsgi.Response):
    """gunicorn's response, with the headers sent together with the first body bytes when the body
    is plain (not chunked, not cut short by Content-Length, permitted by the method and status);
    anything else is written exactly as gunicorn writes it."""

    def write(self, arg):
        if (
            self.headers_sent
            or not arg
            or not isinstance(arg, bytes)
            or self.chunked
            or self._omits_body
            or (self.response_length is not None and len(arg) > self.response_length)
        ):
            return super().write(arg)
        tosend = self.default_headers()
        tosend.extend([f"{k}: {v}\r\n" for k, v in self.headers])  # as send_headers builds them
        head = util.to_bytestring("".join(tosend) + "\r\n", "latin-1")
        self.headers_sent = True
        self.sent += len(arg)
        util.write(self.sock, head + arg)


class BalancedThreadWorker(ThreadWorker):
    slot = -1

    def init_process(self):
        self.slot = self._claim_slot()
        # this worker process's responses (gthread makes them with gunicorn.http.wsgi.create, which
        # names the module's Response): the master and other worker classes are untouched
        wsgi.Response = OneSendResponse
        super().init_process()

    def _claim_slot(self) -> int:
        """The first free slot from age % SLOTS on (workers started together start apart)."""
        pid = os.getpid()
        for i in range(SLOTS):
            slot = (self.age + i) % SLOTS
            holder, _ = _read(slot)
            if holder == 0 or holder == pid or not _alive(holder):
                _write(slot, pid, 0)
                return slot
        return self.age % SLOTS  # more live workers than slots: share one (balance only degrades)

    def _publish(self) -> None:
        _write(self.slot, self.pid, self.nr_conns)

    def fair(self) -> bool:
        """True while this worker holds no more connections than the least loaded live worker."""
        mine, table = self.nr_conns, _ALL.unpack_from(_table)
        for slot in range(SLOTS):
            pid, conns = table[2 * slot], table[2 * slot + 1]
            if pid and conns < mine and slot != self.slot:
                if _alive(pid):
                    return False
                _write(slot, 0, 0)  # a worker killed without clearing its slot
        return True

    def notify(self):
        super().notify()
        self._publish()  # once per turn of the loop: closed and timed-out connections counted

    def accept(self, listener):
        if not self.fair():
            ThreadWorker.set_accept_enabled(self, False)  # the least loaded worker takes it
            return
        super().accept(listener)
        self._publish()

    def set_accept_enabled(self, enabled):
        # the loop turns accepting back on whenever it is under worker_connections: only if fair
        ThreadWorker.set_accept_enabled(self, enabled and self.fair())

    def wait_for_and_dispatch_events(self, timeout):
        holding = self.alive and not self._accepting and self.nr_conns < self.worker_connections
        super().wait_for_and_dispatch_events(min(timeout, HOLD_POLL_SECONDS) if holding else timeout)

    def handle(self, conn):
        """Serve a keep-alive client's next requests on this thread while they come at once.

        gthread hands every finished keep-alive connection back to the main thread, which polls it
        and hands it to a pool thread again for the next request: two thread switches (GIL
        hand-offs), a pipe write and four epoll calls per request, the difference between gthread's
        and sync's CPU per request. A client that sends its next request within KEEPALIVE_WAIT_MS
        (a pool, an SDK, a load balancer) is served straight away instead, up to KEEPALIVE_TURN
        requests, then it queues behind the others; an idle one (a browser) goes back to the
        poller as before, having held the thread for KEEPALIVE_WAIT_MS."""
        result = super().handle(conn)
        for _ in range(KEEPALIVE_TURN - 1):
            if result is not True or not self.alive or conn.is_http2:
                break
            if not conn.parser.unreader.buf.getvalue() and not _readable(conn.sock, KEEPALIVE_WAIT_MS):
                break
            result = super().handle(conn)
        return result

    def run(self):
        try:
            super().run()
        finally:
            _write(self.slot, 0, 0)
