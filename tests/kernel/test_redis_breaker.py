import json
import logging
import time

from django.test import override_settings

from kernel import redis as kernel_redis
from tests.billing.test_entitlements import check, make_customer


def _keep_checking(fixture, seconds: float, at_least: int = 0) -> int:
    """Load: snapshot reads for `seconds` and `at_least` calls (a busy process keeps calling)."""
    calls, until = 0, time.monotonic() + seconds
    while time.monotonic() < until or calls < at_least:
        assert check(fixture, feature="sso").status_code == 200
        calls += 1
    return calls


def test_breaker_half_opens_under_load_and_rate_limits_apply_again(
    ci_catalog, private_redis, settings, caplog
):
    settings.REDIS_BREAKER_SECONDS = 1
    make_customer(ci_catalog)
    ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/api_requests", {"rate": "5/minute"}, content_type="application/json"
    )
    caplog.set_level(logging.WARNING)

    # given Redis frozen: the breaker opens, checks answer from PostgreSQL (rate limits fail open)
    private_redis.stop()
    started = time.monotonic()
    calls = _keep_checking(ci_catalog, 1.5, at_least=30)
    periods = (time.monotonic() - started) / settings.REDIS_BREAKER_SECONDS
    assert check(ci_catalog, feature="api_requests").json()["allowed"] is True
    assert kernel_redis.is_open()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # at most one warning per breaker period (a probe that fails), never one per call
    assert len(warnings) <= periods + 3 and len(warnings) < calls / 2, [r.getMessage() for r in warnings]

    # when Redis answers again while the process stays busy
    private_redis.cont()
    _keep_checking(ci_catalog, settings.REDIS_BREAKER_SECONDS + 0.5)

    # then the half-open probe has closed the breaker and the 5/minute limit holds again
    assert not kernel_redis.is_open()
    allowed = [check(ci_catalog, feature="api_requests").json()["allowed"] for _ in range(20)]
    assert allowed.count(True) == 5


def test_circuit_open_is_not_a_failure(settings):
    settings.REDIS_BREAKER_SECONDS = 0.2
    kernel_redis.trip(OSError("refused"))
    try:
        kernel_redis.get_redis()
    except kernel_redis.RedisUnavailable as exc:
        kernel_redis.trip(exc)  # what every caller does with REDIS_ERRORS
    time.sleep(0.25)
    assert kernel_redis.get_redis() is not None  # half-open: the probe (PING) succeeded, closed
    assert not kernel_redis.is_open()


def test_each_thread_holds_its_own_connection_and_a_stalled_redis_still_fails_the_call(private_redis):
    """get_redis() gives each thread a client with a connection of its own (no pool checkout per
    command), whose timeouts the kernel keeps (no poll() before each send and receive): a frozen
    Redis must still fail a call after the timeout, never hang it."""
    import os
    import threading

    import pytest
    import redis

    client = kernel_redis.get_redis()
    assert client.set("k", "v") and kernel_redis.get_redis() is client
    connection = client.connection
    assert isinstance(connection, kernel_redis.KernelTimeoutConnection)
    assert connection._sock.gettimeout() is None  # blocking: the kernel's SO_RCVTIMEO applies
    others = []
    thread = threading.Thread(target=lambda: others.append(kernel_redis.get_redis()))
    thread.start()
    thread.join()
    assert others[0] is not client and others[0].connection is not connection
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked worker: a client and connection of its own, never its parent's
        own = kernel_redis.get_redis()
        os.write(write, b"1" if own is not client and own.get("k") == b"v" else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"

    private_redis.stop()
    try:
        with pytest.raises(redis.RedisError):
            client.get("k")
    finally:
        private_redis.cont()
    assert client.get("k") == b"v"  # the same client connects again once Redis answers


def test_stored_json_reads_back_as_json_loads_reads_it():
    # orjson reads most entries; what it reads differently or refuses goes to json.loads
    documents = [
        {
            "customer": "c1",
            "features": {"sso": {"limit": None, "used": 3, "leases": [1.5]}},
            "valid_until": None,
        },
        {"credits": 2**63 - 1, "low": -(2**63), "big": 2**64 + 1, "neg": -(2**64)},
        {"valid_until": 1733240000.1234567, "tiny": 5e-324, "nan": float("nan"), "inf": float("inf")},
        {"name": "caf\u00e9 \ud800 \U0001f600", "nul": "a\x00b"},
        [],
        "text",
    ]
    for document in documents:
        raw = json.dumps(document).encode()
        got, expected = kernel_redis.loads_stored(raw), json.loads(raw)
        assert repr(got) == repr(expected), raw


def test_the_key_prefix_follows_the_caches_setting(settings):
    # read once, and again when CACHES changes (override_settings)
    before = kernel_redis.key_prefix()
    with override_settings(CACHES={"default": {**settings.CACHES["default"], "KEY_PREFIX": "other"}}):
        assert kernel_redis.key_prefix() == "other"
    assert kernel_redis.key_prefix() == before
