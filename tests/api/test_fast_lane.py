"""The fast lane (monetize/hotpath.py): the entitlement check and key verification answered at the
WSGI layer once the host is in the routing cache. Each case below is sent twice through WSGI, once
to Django's handler alone and once through the fast lane, and must get the same status, headers and
body; cases the fast lane leaves to Django (a query string, a large body, an unknown or suspended
host, another method) are in the list too, so the two ways agree whoever answers."""

import io
import json
import weakref
from types import SimpleNamespace

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from kernel.requestlog import request_log_flush, request_log_recent
from monetize import hotpath
from monetize.hotpath import HotPathWSGI
from tenants.middleware import tenant_cache_clear
from tenants.services import tenant_resume, tenant_suspend

CHECK = "/api/v1/entitlements/check"
VERIFY = "/api/v1/keys/verify"


@pytest.fixture
def handlers(monkeypatch):
    """Django's WSGI handler, and the fast lane in front of another one. As Django's test client
    does, the test's transaction is kept: close_old_connections is not run between requests."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    monkeypatch.setattr(hotpath, "close_old_connections", lambda: None)
    calls = []
    tenant_cache_clear()  # hosts routed while the test's data was made are not yet the fast lane's

    class Counted(WSGIHandler):
        def __call__(self, environ, start_response):
            calls.append(environ["PATH_INFO"])
            return super().__call__(environ, start_response)

    try:
        yield WSGIHandler(), HotPathWSGI(Counted()), calls
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def call(
    app, host, path, body=b"", *, method="POST", key=None, query="", content_type="application/json", **extra
):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host, "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(), "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
        "wsgi.multithread": True, "wsgi.multiprocess": True, **extra,
    }  # fmt: skip
    if key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"], answered["headers"] = status, headers

    chunks = app(environ, start_response)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return answered["status"], sorted(answered["headers"]), body


@pytest.fixture
def shop(ci_catalog):
    api = ci_catalog.api()
    assert api.post("/api/v1/customers", {"external_id": "c1", "tier": "team"}, content_type="application/json").status_code == 201  # fmt: skip
    created = api.post("/api/v1/customers/c1/api-keys", {"name": "app"}, content_type="application/json")
    return SimpleNamespace(
        tenant=ci_catalog.tenant,
        host=ci_catalog.host,
        api_key=ci_catalog.api_key,
        api=ci_catalog.api,
        customer_key=created.json()["key"],
    )


def _cases(shop):
    ok = json.dumps({"customer": "c1", "feature": "private_projects"}).encode()
    deep = b'{"customer": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    return {
        "a check": (CHECK, ok, {}),
        "an unknown customer": (CHECK, json.dumps({"customer": "nobody", "feature": "sso"}).encode(), {}),
        "an unknown feature": (CHECK, json.dumps({"customer": "c1", "feature": "teleport"}).encode(), {}),
        "a missing field": (CHECK, b'{"customer": "c1"}', {}),
        "a quantity that is no number": (CHECK, b'{"customer": "c1", "feature": "sso", "quantity": "x"}', {}),
        "broken JSON": (CHECK, b'{"customer": ', {}),
        "JSON nested 3,000 deep": (CHECK, deep, {}),
        "a NUL in the JSON": (CHECK, b'{"customer": "c\\u00001", "feature": "sso"}', {}),
        "not JSON": (CHECK, ok, {"content_type": "text/plain"}),
        "no key": (CHECK, ok, {"key": ""}),
        "a wrong key": (CHECK, ok, {"key": "mk_test_" + "x" * 40}),
        "a malformed key": (CHECK, ok, {"key": "nope"}),
        "a verification": (VERIFY, json.dumps({"key": shop.customer_key, "feature": "private_projects"}).encode(), {}),
        "a verification of an unknown key": (VERIFY, json.dumps({"key": "sk-alpha-" + "0" * 32}).encode(), {}),
        "a verification without a key": (VERIFY, b"{}", {}),
        "another method (Django's)": (CHECK, b"", {"method": "GET"}),
        "a query string (Django's)": (CHECK, ok, {"query": "x=%00"}),
        "a body over the limit (Django's)": (CHECK, b'{"customer": "' + b"c" * 20_000 + b'"}', {}),
        "an unknown host (Django's)": (CHECK, ok, {"host": "nobody.test"}),
        "a host with an odd port (Django's)": (CHECK, ok, {"host_suffix": ":x"}),
    }  # fmt: skip


def test_the_fast_lane_answers_every_case_as_django_does(shop, handlers, settings):
    plain, fast, calls = handlers
    settings.API_MAX_BODY_BYTES = 10_000
    # the fast lane serves hosts the chain has routed: the first call goes to Django and fills the cache
    warm = json.dumps({"customer": "c1", "feature": "sso"}).encode()
    assert call(fast, shop.host, CHECK, warm, key=shop.api_key)[0] == "200 OK"
    assert calls == [CHECK]
    served_by_django = 0
    for name, (path, body, options) in _cases(shop).items():
        options = dict(options)
        host = options.pop("host", shop.host) + options.pop("host_suffix", "")
        key = options.pop("key", shop.api_key)
        before = len(calls)
        expected = call(plain, host, path, body, key=key, **options)
        got = call(fast, host, path, body, key=key, **options)
        assert got == expected, name
        assert expected[0][:3] != "500", name
        served_by_django += len(calls) - before
        assert (len(calls) > before) == name.endswith("(Django's)"), name
    assert served_by_django == 5


def test_a_suspended_tenant_is_left_to_django_and_answered_403(shop, handlers):
    plain, fast, calls = handlers
    body = json.dumps({"customer": "c1", "feature": "sso"}).encode()
    assert call(fast, shop.host, CHECK, body, key=shop.api_key)[0] == "200 OK"
    tenant_suspend(tenant=shop.tenant)
    tenant_cache_clear()
    try:
        for _ in range(2):  # the second call finds the suspended tenant in the cache
            status, _headers, answer = call(fast, shop.host, CHECK, body, key=shop.api_key)
            assert status.startswith("403") and json.loads(answer)["error"]["code"] == "tenant_suspended"
        assert calls == [CHECK, CHECK, CHECK]
    finally:
        tenant_resume(tenant=shop.tenant)
        tenant_cache_clear()


@pytest.fixture
def rated(shop):
    """c1 with two API requests a minute (made before the handlers: the test client would put the
    connection signals back)."""
    answer = shop.api().put(
        "/api/v1/customers/c1/overrides/api_requests", {"rate": "2/minute"}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    return shop


def test_a_rate_feature_takes_one_step_a_call_and_says_so_in_its_headers(rated, handlers):
    # a rate feature consumes from the bucket: the fast lane takes one step per call, as the chain
    shop, (_plain, fast, calls) = rated, handlers
    body = json.dumps({"customer": "c1", "feature": "api_requests"}).encode()
    answers = [call(fast, shop.host, CHECK, body, key=shop.api_key) for _ in range(3)]
    assert len(calls) == 1  # only the first went through Django
    assert [json.loads(b)["allowed"] for _s, _h, b in answers] == [True, True, False]
    headers = [dict(h) for _s, h, _b in answers]
    assert [h["X-RateLimit-Remaining"] for h in headers] == ["1", "0", "0"]
    assert "Retry-After" not in headers[0] and 1 <= int(headers[2]["Retry-After"]) <= 30


def test_fast_lane_calls_are_in_the_request_log(shop, handlers, private_redis):
    _plain, fast, calls = handlers
    body = json.dumps({"customer": "c1", "feature": "sso"}).encode()
    for _ in range(3):
        call(fast, shop.host, CHECK, body, key=shop.api_key)
    call(fast, shop.host, CHECK, b"{", key=shop.api_key)
    assert len(calls) == 1
    request_log_flush()
    rows = [
        row for row in request_log_recent(schema=shop.tenant.schema_name, limit=50) if row["path"] == CHECK
    ]
    assert [(row["method"], row["path"], row["status"], row["key"]) for row in rows[:4]] == [
        ("POST", CHECK, 400, shop.api_key[:12])
    ] + [("POST", CHECK, 200, shop.api_key[:12])] * 3


def test_settings_changed_after_the_fast_lane_was_made_apply_to_it(shop, handlers, private_redis, settings):
    # the fast lane reads its settings once and again on setting_changed (override_settings, as here)
    _plain, fast, calls = handlers
    body = json.dumps({"customer": "c1", "feature": "sso"}).encode()
    call(fast, shop.host, CHECK, body, key=shop.api_key)  # fills the routing cache (Django's)
    settings.REQUEST_LOG_ENABLED = False
    call(fast, shop.host, CHECK, body, key=shop.api_key)
    request_log_flush()
    rows = request_log_recent(schema=shop.tenant.schema_name, limit=50)
    assert len(calls) == 1 and [row["path"] for row in rows].count(CHECK) == 1
    settings.API_MAX_BODY_BYTES = len(body) - 1  # now over the limit: Django's 413
    status, _headers, _body = call(fast, shop.host, CHECK, body, key=shop.api_key)
    assert status.startswith("413") and len(calls) == 2


def test_a_changed_urlconf_is_resolved_again(settings):
    fast = HotPathWSGI(WSGIHandler())
    assert fast._view(CHECK)  # the tenant URLconf routes the check
    settings.ROOT_URLCONF = "monetize.urls_public"  # which has no API: the fast lane must not keep the view
    assert fast._view(CHECK) is False
    settings.ROOT_URLCONF = "monetize.urls_tenant"
    assert fast._view(CHECK)


def test_the_signal_receivers_the_fast_lane_stands_in_for():
    # the fast lane sends neither request_started nor request_finished: it closes an open database
    # connection as close_old_connections would and does nothing else these receivers do (queries
    # are recorded only under DEBUG, the cache backend keeps no per-request connection, the fast
    # lane never sets a thread's URLconf). A new receiver must be weighed there, then listed here.
    def names(signal):
        found = [entry[1] for entry in signal.receivers]
        return [(r() if isinstance(r, weakref.ReferenceType) else r).__qualname__ for r in found]

    assert sorted(names(signals.request_started)) == ["close_old_connections", "reset_queries"]
    assert sorted(names(signals.request_finished)) == [
        "close_caches",
        "close_old_connections",
        "reset_urlconf",
    ]
