"""Process-local copies of hot Redis keys, kept coherent by Redis itself (server-assisted client-side
caching: CLIENT TRACKING in redirect mode).

The entitlement check reads two keys per call (the integrator key's entry and the customer's
snapshot) that change seldom and are read thousands of times a second. A round trip to Redis costs
more CPU than the rest of the check, so each process keeps what it read:

- `get(keys)` answers from the process's copies; the keys it does not hold are read with one MGET
  on a connection of this thread that has tracking on, so Redis remembers that this process holds
  them (a missing key is held too, as None).
- Redis then tells the process's listener (one connection per process, subscribed to
  `__redis__:invalidate`, the REDIRECT target of every tracking connection) whenever one of those
  keys is written, deleted, expires or the database is flushed; the listener drops the copy.
- Before answering from a copy, `get` drains whatever invalidations already reached the listener's
  socket, so an invalidation Redis sent before it answered the writer is applied before this
  process answers again (the listener thread itself may wait for the GIL).
- A read racing an invalidation never stores a stale copy: the read claims its keys first and stores
  a value only if no invalidation took the claim meanwhile (Redis's own recipe).
- Copies are answered only while the listener is known to be live: it pings every PING_SECONDS and a
  pong must have come within ALIVE_SECONDS. A stalled or frozen Redis stops local answers within
  that; a lost listener, or a tracking connection Redis closed (the same poll sees its socket end),
  drops every copy (Redis forgets a closed connection's tracking, so what it read can no longer be
  invalidated). Each copy is also read again after LOCAL_CACHE_SECONDS (60) whatever happens: a
  bound on any invalidation this could still miss.
- Writes made by this process drop its own copies at once (`forget`, `clear`), without waiting
  for the round trip through Redis.

`LOCAL_CACHE_SECONDS=0` turns it off (every read goes to Redis, as before). TLS (`rediss://`) is not
supported here: there it stays off.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time

import hiredis
import redis
from django.conf import settings
from django.core.signals import setting_changed

from kernel import redis as kredis

logger = logging.getLogger(__name__)

MAX_COPIES = 10_000  # past this a process drops its copies and starts again (memory stays bounded)
PING_SECONDS = 0.5
ALIVE_SECONDS = 1.5  # three pings
TIMEOUT_SECONDS = 0.25  # as kernel.redis's connections
_CHANNEL = b"__redis__:invalidate"


class _Conn:
    """A bare RESP2 connection (hiredis's reader): the listener needs pub/sub messages and pongs on
    one socket with non-blocking drains, which redis-py's connections do not offer."""

    def __init__(self, options: dict):
        if "path" in options:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(options["path"])
        else:
            sock = socket.create_connection(
                (options.get("host", "127.0.0.1"), options.get("port", 6379)), TIMEOUT_SECONDS
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kredis.kernel_timeouts(sock, TIMEOUT_SECONDS)
        self.sock = sock
        self.reader = hiredis.Reader()
        try:
            if options.get("password"):
                auth = [options["username"]] if options.get("username") else []
                self.call("AUTH", *auth, options["password"])
            if options.get("db"):
                self.call("SELECT", options["db"])
        except BaseException:
            self.close()
            raise

    def send(self, *args) -> None:
        self.sock.sendall(hiredis.pack_command(args))

    def read(self):
        while True:
            reply = self.reader.gets()
            if reply is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise redis.exceptions.ResponseError(str(reply))
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.reader.feed(data)

    def call(self, *args):
        self.send(*args)
        return self.read()

    def drain(self) -> list:
        """Every complete reply already received, without waiting."""
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                raise ConnectionError("redis closed the connection")
            self.reader.feed(data)
        replies = []
        while (reply := self.reader.gets()) is not False:
            replies.append(reply)
        return replies

    def readable(self, timeout: float = 0) -> bool:
        # a poll object per call: one may not be polled by two threads at once, and select() fails
        # on a descriptor past 1023
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _refusal(exc: Exception) -> bool:
    """Whether an error reply means this server will never track (an unknown or forbidden
    command), rather than that it is not ready yet."""
    text = str(exc).lower()
    return "unknown" in text or text.startswith("noperm") or "not allowed" in text or "disabled" in text


class _State:
    """One process's copies and listener (made again in a forked child and when kernel.redis's
    pool changes: tests point it at a private server)."""

    def __init__(self, pool):
        self.pool = pool
        self.options = pool.connection_kwargs
        self.entries: dict[str, tuple[bytes | None, float]] = {}  # key -> (value, read at)
        self.claims: dict[str, object] = {}  # key -> the read that may store it
        self.trackers: dict[int, _Conn] = {}  # the threads' tracking connections
        self.generation = 0  # moves whenever copies may have lost their tracking
        self.listener: _Conn | None = None
        self.listener_id: int | None = None
        self.alive_until = 0.0
        self.last_pong = 0.0
        self.lock = threading.Lock()  # held while invalidations are applied
        self.stopped = False
        self.refused = False  # the server has no client tracking: this process reads Redis
        self.thread = threading.Thread(target=self._listen, name="localcache-listener", daemon=True)
        self.thread.start()

    # -- the listener ----------------------------------------------------------------------------

    def _listen(self) -> None:
        backoff = PING_SECONDS
        while not self.stopped:
            conn = None
            try:
                conn = _Conn(self.options)
                ident = conn.call("CLIENT", "ID")
                conn.send("SUBSCRIBE", _CHANNEL)
                conn.read()
                with self.lock:
                    self._drop_all()
                    self.listener, self.listener_id = conn, ident
                backoff = PING_SECONDS
                self._serve(conn)
            except redis.exceptions.ResponseError as exc:
                if _refusal(exc):  # a server without CLIENT TRACKING, or that forbids it
                    logger.warning("redis refused client tracking (%s): checks read Redis every time", exc)
                    self.stopped = self.refused = True
                else:  # LOADING, BUSY and the like: a restarting server, try again
                    kredis.warn_throttled("localcache", "local cache listener: redis answered %r", exc)
            except Exception as exc:  # noqa: BLE001  (a background thread: any failure means reconnect)
                if not self.stopped:
                    kredis.warn_throttled(
                        "localcache", "local cache listener lost Redis (%r); reading Redis", exc
                    )
            finally:
                with self.lock:
                    if self.listener is conn:
                        self.listener, self.listener_id = None, None
                    self._drop_all()
                if conn is not None:
                    conn.close()
            if not self.stopped:
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _serve(self, conn: _Conn) -> None:
        last_ping, self.last_pong = 0.0, time.monotonic()
        while not self.stopped:
            now = time.monotonic()
            if now - last_ping >= PING_SECONDS:
                conn.send("PING")
                last_ping = now
            if now - self.last_pong > ALIVE_SECONDS + PING_SECONDS:
                raise ConnectionError("redis did not answer the listener's pings")
            conn.readable(PING_SECONDS / 2)
            with self.lock:
                self._apply(conn.drain())

    def _apply(self, replies: list) -> None:
        """Apply invalidations and pongs (caller holds the lock)."""
        for reply in replies:
            if not isinstance(reply, list) or not reply:  # an error reply: the pings will tell
                continue
            kind = reply[0]
            if kind == b"message" and reply[1] == _CHANNEL:
                keys = reply[2]
                if keys is None:  # FLUSHDB / FLUSHALL
                    self.clear()
                else:
                    for raw in keys:
                        key = raw.decode("utf-8", "surrogateescape")
                        self.entries.pop(key, None)
                        self.claims.pop(key, None)
            elif kind == b"pong":
                self.last_pong = time.monotonic()
                self.alive_until = self.last_pong + ALIVE_SECONDS

    def _drop_all(self) -> None:
        self.alive_until = 0.0
        self._drop_copies()

    def _drop_copies(self) -> None:
        self.generation += 1
        self.clear()

    def clear(self) -> None:
        """Every copy and claim goes (caller holds the lock)."""
        self.entries.clear()
        self.claims.clear()

    def catch_up(self) -> bool:
        """Apply what already reached the listener, and notice a tracking connection Redis closed;
        True when copies may be answered. One poll() over the listener and the tracking
        connections (a poll object per call: one may not be polled by two threads at once, and
        select() fails on a descriptor past 1023)."""
        conn = self.listener
        if conn is None:
            return False
        try:
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)
            trackers = list(self.trackers.values())
            for tracker in trackers:
                poller.register(tracker.sock, select.POLLIN)
            ready = poller.poll(0)
            if ready:
                listener_fd = conn.sock.fileno()
                if any(fd == listener_fd for fd, _ in ready):
                    with self.lock:
                        if self.listener is conn:
                            self._apply(conn.drain())
                if any(fd != listener_fd for fd, _ in ready):
                    self._check_trackers(trackers, {fd: event for fd, event in ready})
        except (OSError, ValueError, redis.exceptions.RedisError):  # ValueError: closed meanwhile
            with self.lock:
                self._drop_all()
            return False
        return time.monotonic() < self.alive_until and self.listener is conn

    def _check_trackers(self, trackers: list[_Conn], events: dict[int, int]) -> None:
        """A tracking connection is readable only while its thread waits for a reply, or once
        Redis closed it (CLIENT KILL, a server `timeout`): then what it read can no longer be
        invalidated, and every copy goes (its thread makes a new connection on its next read)."""
        for tracker in trackers:
            event = events.get(tracker.sock.fileno())
            if event is None:
                continue
            closed = bool(event & (select.POLLHUP | select.POLLERR | select.POLLNVAL))
            if not closed:
                try:
                    closed = tracker.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    closed = False
            if closed:
                with self.lock:
                    self.trackers.pop(id(tracker), None)
                    self._drop_copies()

    # -- this thread's tracking connection -------------------------------------------------------

    def tracking_conn(self) -> tuple[_Conn, int] | None:
        held = getattr(_local, "conn", None)
        if held is not None and held[0] is self and held[2] == self.generation:
            return held[1], held[2]
        if held is not None:
            self._forget_tracker(held[1])
            _local.conn = None
        generation, ident = self.generation, self.listener_id
        if ident is None:
            return None
        conn = _Conn(self.options)
        try:
            conn.call("CLIENT", "TRACKING", "ON", "REDIRECT", ident)
        except BaseException:
            conn.close()
            raise
        _local.conn = (self, conn, generation)
        with self.lock:
            self.trackers[id(conn)] = conn
        return conn, generation

    def lost_tracking(self) -> None:
        """This thread's tracking connection failed: what it read can no longer be invalidated."""
        held = getattr(_local, "conn", None)
        if held is not None:
            self._forget_tracker(held[1])
            _local.conn = None
        with self.lock:
            self._drop_copies()

    def _forget_tracker(self, conn: _Conn) -> None:
        with self.lock:
            self.trackers.pop(id(conn), None)
        conn.close()


_local = threading.local()
_state: _State | None = None
_state_lock = threading.Lock()
_max_age: float | None = None


def _settings_changed(*, setting: str, **kwargs) -> None:
    global _max_age
    if setting == "LOCAL_CACHE_SECONDS":
        _max_age = None
    elif setting == "CACHES":
        _max_age = None
        reset()


setting_changed.connect(_settings_changed)


def _after_fork() -> None:
    global _state, _local
    _state, _local = None, threading.local()  # the parent's listener thread does not exist here


os.register_at_fork(after_in_child=_after_fork)


def _current() -> _State | None:
    global _state, _max_age
    if _max_age is None:
        _max_age = float(getattr(settings, "LOCAL_CACHE_SECONDS", 0))
    if _max_age <= 0:
        return None
    state, pool = _state, kredis._pool()
    if state is not None and state.refused and state.pool is pool:
        return None
    if state is None or state.pool is not pool:  # the same server as kernel.redis's connections
        if not issubclass(
            pool.connection_class, (kredis.KernelTimeoutConnection, redis.UnixDomainSocketConnection)
        ):
            return None  # TLS: not supported here
        with _state_lock:
            if _state is not None and _state.pool is not pool:
                _stop(_state)
                _state = None
            if _state is None:
                _state = _State(pool)
            state = _state
    return state


def get(keys: list[str]) -> list[bytes | None] | None:
    """The values of `keys` (None for a missing key), from this process's copies where it holds
    them; None when copies cannot be answered now (off, the listener not live, the breaker open,
    Redis failing): the caller then reads Redis its usual way."""
    state = _current()
    if state is None or kredis.is_open() or not state.catch_up():
        return None
    entries, now, max_age = state.entries, time.monotonic(), _max_age or 0.0  # None: settings changing
    values: list[bytes | None] = []
    missing: list[str] = []
    for key in keys:
        held = entries.get(key)
        if held is None or now - held[1] > max_age:
            missing.append(key)
            values.append(None)
        else:
            values.append(held[0])
    if not missing:
        return values
    claim = object()
    try:
        tracked = state.tracking_conn()
        if tracked is None:
            return None
        conn, generation = tracked
        for key in missing:  # claimed before the read: an invalidation meanwhile takes the claim
            state.claims[key] = claim
        read = conn.call("MGET", *missing)
        by_key = dict(zip(missing, read, strict=True))
    except (OSError, ValueError, TypeError, redis.exceptions.RedisError):
        state.lost_tracking()
        return None  # the caller's own read then finds out whether Redis is down
    with state.lock:
        if len(entries) + len(by_key) > MAX_COPIES:
            entries.clear()  # Redis still tracks them: an invalidation for a key not held is harmless
        current = state.generation == generation
        for key, value in by_key.items():
            if state.claims.get(key) is claim:
                del state.claims[key]
                if current:
                    entries[key] = (value, now)
    return [by_key[key] if key in by_key else value for key, value in zip(keys, values, strict=True)]


def forget(keys) -> None:
    """Drop this process's copies of `keys` now (this process wrote them; Redis will tell the
    others)."""
    state = _state
    if state is None:
        return
    with state.lock:
        for key in keys:
            state.entries.pop(key, None)
            state.claims.pop(key, None)


def clear() -> None:
    """Drop every copy of this process (a write that touches keys by pattern)."""
    state = _state
    if state is None:
        return
    with state.lock:
        state.clear()


def reset() -> None:
    """Stop the listener and forget everything (settings changed; tests)."""
    global _state
    with _state_lock:
        state, _state = _state, None
    if state is not None:
        _stop(state)


def _stop(state: _State) -> None:
    state.stopped = True
    with state.lock:
        state._drop_all()
        if state.listener is not None:
            state.listener.close()


def stats() -> dict:
    state = _state
    if state is None:
        return {"on": False}
    return {
        "on": True,
        "live": time.monotonic() < state.alive_until,
        "copies": len(state.entries),
        "generation": state.generation,
    }
