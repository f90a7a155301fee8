"""The entitlement check and key verification leave the middleware chain early
(monetize.middleware.ApiHotPathMiddleware): no URL resolution, no page-only middleware. Everything
the rest of the API gets still applies to them: tenant routing and suspension, the body limit, the
request log, Security's headers, authentication and the error shape."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls.resolvers import URLResolver

from kernel.requestlog import request_log_flush, request_log_recent
from tenants.middleware import tenant_cache_clear
from tenants.services import tenant_resume, tenant_suspend

CHECK = "/api/v1/entitlements/check"


def _check(api, customer="c1", feature="private_projects", **extra):
    return api.post(
        CHECK, {"customer": customer, "feature": feature}, content_type="application/json", **extra
    )


@pytest.fixture
def customer(ci_catalog):
    response = ci_catalog.api().post(
        "/api/v1/customers", {"external_id": "c1", "tier": "team"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return ci_catalog


def test_the_hot_paths_are_answered_without_resolving_a_url(customer, monkeypatch):
    # given: one client (one handler, as one gunicorn worker) that has answered each path once
    api = customer.api()
    created = api.post("/api/v1/customers/c1/api-keys", {"name": "app"}, content_type="application/json")
    secret = created.json()["key"]
    first = _check(api)
    verify = {"key": secret, "feature": "private_projects"}
    assert api.post("/api/v1/keys/verify", verify, content_type="application/json").status_code == 200

    # when: URL resolution is broken
    def no_resolving(self, path):
        raise AssertionError(f"resolved {path}")

    monkeypatch.setattr(URLResolver, "resolve", no_resolving)

    # then: both hot paths still answer, the same as before
    again = _check(api)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.json()["tier"] == "team"
    verified = api.post("/api/v1/keys/verify", verify, content_type="application/json")
    assert verified.status_code == 200 and verified.json()["customer"] == "c1"
    with pytest.raises(AssertionError, match="resolved /api/v1/me"):  # every other path resolves
        api.get("/api/v1/me")


def test_middleware_below_the_hot_path_is_the_known_page_only_list():
    # a middleware added below ApiHotPathMiddleware is skipped by the check and key verification:
    # it must be applied there (APPLIED) or pass API requests through (then add it here)
    below = settings.MIDDLEWARE[settings.MIDDLEWARE.index("monetize.middleware.ApiHotPathMiddleware") + 1 :]
    assert below == [
        "django.middleware.security.SecurityMiddleware",  # applied by the hot path
        "monetize.middleware.PagesWhiteNoiseMiddleware",
        "monetize.middleware.PagesSessionMiddleware",
        "django.middleware.common.CommonMiddleware",  # applied by the hot path
        "django.middleware.csrf.CsrfViewMiddleware",  # API views are csrf_exempt
        "monetize.middleware.PagesAuthenticationMiddleware",
        "monetize.middleware.PagesMessageMiddleware",
        "monetize.middleware.PagesXFrameOptionsMiddleware",
        "allauth.account.middleware.AccountMiddleware",  # acts on 404s under /accounts/ only
    ]


def test_the_check_keeps_the_api_s_headers_and_error_shapes(customer):
    api = customer.api()
    ok = _check(api)
    assert ok.status_code == 200
    assert ok["Content-Type"] == "application/json"
    assert ok["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware
    assert ok["Referrer-Policy"] == "same-origin"
    assert int(ok["Content-Length"]) == len(ok.content)

    unknown = _check(api, customer="nobody")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_customer"
    assert unknown["X-Content-Type-Options"] == "nosniff"

    bad_key = _check(customer.api(key="mk_test_" + "x" * 40))
    assert bad_key.status_code == 401 and bad_key["WWW-Authenticate"] == 'Bearer realm="api"'
    assert set(bad_key.json()["error"]) == {"code", "message", "details"}

    wrong_method = api.get(CHECK)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_the_check_is_routed_limited_and_logged_like_any_api_call(customer, settings, private_redis):
    api = customer.api()
    # the body limit (above the hot path)
    settings.API_MAX_BODY_BYTES = 64
    big = api.post(CHECK, {"customer": "c1", "feature": "x" * 100}, content_type="application/json")
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    settings.API_MAX_BODY_BYTES = 1_000_000
    # the request log (above the hot path)
    assert _check(api).status_code == 200
    request_log_flush()
    rows = request_log_recent(schema=customer.tenant.schema_name, limit=10)
    assert [(row["method"], row["path"], row["status"]) for row in rows][:2] == [
        ("POST", CHECK, 200),
        ("POST", CHECK, 413),
    ]
    # a NUL in the query string (above the hot path)
    nul = api.post(CHECK + "?x=%00", {"customer": "c1", "feature": "sso"}, content_type="application/json")
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "nul_character"


def test_a_suspended_tenant_s_check_is_403_and_an_unknown_host_s_404(customer):
    tenant_suspend(tenant=customer.tenant)
    tenant_cache_clear()
    try:
        suspended = _check(customer.api())
        assert suspended.status_code == 403 and suspended.json()["error"]["code"] == "tenant_suspended"
    finally:
        tenant_resume(tenant=customer.tenant)
        tenant_cache_clear()
    assert _check(customer.api()).status_code == 200

    unknown = _check(Client(HTTP_HOST="nobody.test", HTTP_AUTHORIZATION=f"Bearer {customer.api_key}"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_host"


def test_the_operator_s_bare_host_has_no_check(db):
    # the public URLconf has no API: the hot path steps aside and the chain answers as for any path
    bare = Client(HTTP_HOST="localhost")
    check = _check(bare)
    other = bare.post("/api/v1/customers", {}, content_type="application/json")
    assert check.status_code == other.status_code == 404
    assert b"unknown_host" not in check.content  # the host is known: its URLconf has no such path
