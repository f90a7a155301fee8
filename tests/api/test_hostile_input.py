"""Hostile input answers a clear 4xx JSON error and stores nothing (issue 10, items 16-18, 21)."""

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from billing.entitlements.models import EntitlementOverride as Override
from billing.memberships.models import Customer
from tests.billing.test_entitlements import make_customer

DEEP = b"[" * 3000 + b"]" * 3000
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert set(body["error"]) == {"code", "message", "details"}
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/entitlements/check",
        "/api/v1/keys/verify",
        "/api/v1/customers",
        "/api/v1/customers/c1/counters/private_projects",
        "/api/v1/meters",
        "/api/v1/checkouts",
        "/api/v1/customers/c1/credits/grants",
        "/api/v1/customers/c1/overrides/private_projects",
        "/api/v1/events",
    ],
)
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_3000_deep_is_a_400_everywhere(ci_catalog, path, body):
    make_customer(ci_catalog, "c1")
    api = ci_catalog.api()
    method = api.put if path.endswith("/overrides/private_projects") else api.post
    _error(method(path, body, content_type="application/json"), 400, "malformed_json")
    with tenant_context(ci_catalog.tenant):
        assert Customer.objects.count() == 1


def test_nul_in_the_path_is_a_400(alpha):
    _error(alpha.api().get("/api/v1/customers/ali%00ce"), 400, "nul_character")


def test_nul_in_the_query_string_is_a_400(ci_catalog):
    make_customer(ci_catalog, "c1")
    _error(ci_catalog.api().get("/api/v1/customers/c1/usage?meter=bu%00ilds"), 400, "nul_character")
    _error(ci_catalog.api().get("/api/v1/customers?email=a%00b"), 400, "nul_character")


def test_nul_on_a_page_is_a_plain_400(alpha):
    response = alpha.client().get("/pricing/?x=%00")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        '{"external_id": "alice", "metadata": {"pl\\u0000an": "x"}}',
        '{"external_id": "alice", "metadata": {"plan": "x\\u0000"}}',
        '{"external_id": "ali\\u0000ce"}',
    ],
)
def test_nul_in_json_keys_and_values_is_a_400_and_stores_nothing(alpha, body):
    response = alpha.api().post("/api/v1/customers", body, content_type="application/json")
    _error(response, 400, "nul_character")
    with tenant_context(alpha.tenant):
        assert not Customer.objects.exists()


def test_nul_in_json_on_a_lean_endpoint_is_a_400(ci_catalog):
    make_customer(ci_catalog, "c1")
    body = '{"customer": "c1", "feature": "private\\u0000projects"}'
    response = ci_catalog.api().post("/api/v1/entitlements/check", body, content_type="application/json")
    _error(response, 400, "nul_character")


def test_an_escaped_backslash_before_u0000_is_not_a_nul(alpha):
    body = '{"external_id": "alice", "metadata": {"path": "C:\\\\u0000"}}'
    response = alpha.api().post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {"path": "C:\\u0000"}


@pytest.mark.parametrize("limit", [2**63, 2**64, 10**20])
def test_an_override_limit_beyond_bigint_is_a_400(ci_catalog, limit):
    make_customer(ci_catalog, "c1")
    response = ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/private_projects",
        f'{{"limit": {limit}}}',
        content_type="application/json",
    )
    _error(response, 400, "invalid_request")
    with tenant_context(ci_catalog.tenant):
        assert not Override.objects.exists()


def test_the_largest_bigint_override_limit_is_kept(ci_catalog):
    make_customer(ci_catalog, "c1")
    response = ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/private_projects",
        f'{{"limit": {2**63 - 1}}}',
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content
    with tenant_context(ci_catalog.tenant):
        assert Override.objects.get().limit_value == 2**63 - 1


def test_an_override_rate_beyond_integer_is_a_400(ci_catalog):
    make_customer(ci_catalog, "c1")
    for rate in (f"{2**31}/minute", "9" * 5000 + "/minute"):
        response = ci_catalog.api().put(
            "/api/v1/customers/c1/overrides/private_projects", {"rate": rate}, content_type="application/json"
        )
        _error(response, 400, "invalid_request")


def test_host_matching_is_case_insensitive(alpha):
    response = Client(HTTP_HOST=alpha.host.upper(), HTTP_AUTHORIZATION=f"Bearer {alpha.api_key}").get(
        "/api/v1/me"
    )
    assert response.status_code == 200, response.content
