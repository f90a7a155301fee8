"""The bounded log of recent API calls (kernel/requestlog.py): capped per tenant, buffered per process
(never unbounded), only /api/v1/ calls of a tenant, and nothing but metadata; Redis down costs the
entries, never the request."""

import pytest

from kernel import requestlog
from kernel.requestlog import request_log_append, request_log_flush, request_log_recent


@pytest.fixture
def empty_log(private_redis):
    requestlog._buffer.clear()
    yield private_redis
    requestlog._buffer.clear()


def test_each_tenants_list_keeps_only_the_newest(empty_log, settings):
    settings.REQUEST_LOG_MAX = 3
    for n in range(5):
        request_log_append(schema="t_one", entry={"n": n})
    request_log_append(schema="t_two", entry={"n": 99})
    assert request_log_flush() == 6
    assert [row["n"] for row in request_log_recent(schema="t_one", limit=10)] == [4, 3, 2]
    assert [row["n"] for row in request_log_recent(schema="t_two", limit=10)] == [99]
    assert request_log_flush() == 0  # nothing left to write


def test_the_buffer_is_bounded_while_redis_is_away(empty_log, settings):
    settings.REQUEST_LOG_BUFFER_MAX = 4
    empty_log.stop()
    for n in range(10):
        request_log_append(schema="t_one", entry={"n": n})
    assert [entry for _, entry in requestlog._buffer] == [b'{"n":6}', b'{"n":7}', b'{"n":8}', b'{"n":9}']
    assert request_log_flush() == 0  # dropped, not raised
    assert request_log_recent(schema="t_one", limit=10) == []


def test_only_api_calls_of_a_tenant_are_logged_with_metadata_only(alpha, empty_log):
    api = alpha.api()
    api.get("/api/v1/me?token=secret-in-query")
    api.get("/pricing/")
    alpha.client().get("/api/v1/me", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    request_log_flush()
    rows = request_log_recent(schema=alpha.tenant.schema_name, limit=10)
    assert [(row["path"], row["status"], row["key"]) for row in rows] == [
        ("/api/v1/me", 401, ""),
        ("/api/v1/me", 200, alpha.api_key[:12]),
    ]
    assert set(rows[1]) == {"at", "method", "path", "status", "ms", "key", "idempotency_key"}
    assert "secret-in-query" not in str(rows) and alpha.api_key not in str(rows)
