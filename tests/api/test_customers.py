import pytest
from django_tenants.utils import tenant_context

from billing.memberships.models import Customer
from tests.helpers import committed, run_parallel


def _post(client, body, **headers):
    return client.post("/api/v1/customers", body, content_type="application/json", **headers)


def test_upsert_creates_then_updates(alpha):
    api = alpha.api()
    created = _post(
        api, {"external_id": "cust_1", "email": "a@x.test", "metadata": {"plan": "x", "seats": 3}}
    )
    assert created.status_code == 201
    assert created.json()["external_id"] == "cust_1"
    updated = _post(api, {"external_id": "cust_1", "name": "Ada", "metadata": {"plan": None}})
    assert updated.status_code == 200
    body = updated.json()
    assert body["name"] == "Ada" and body["email"] == "a@x.test" and body["metadata"] == {"seats": 3}
    with tenant_context(alpha.tenant):
        assert Customer.objects.filter(external_id="cust_1").count() == 1


def test_get_patch_and_404(alpha, beta):
    api = alpha.api()
    _post(api, {"external_id": "cust_2"})
    assert api.get("/api/v1/customers/cust_2").json()["external_id"] == "cust_2"
    patched = api.patch("/api/v1/customers/cust_2", {"email": "b@x.test"}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["email"] == "b@x.test"
    missing = api.get("/api/v1/customers/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_customer"
    # tenant B cannot see tenant A's customer: 404, not 403
    assert beta.api().get("/api/v1/customers/cust_2").status_code == 404


def test_list_is_cursor_paginated_and_filtered(alpha):
    api = alpha.api()
    for i in range(5):
        _post(api, {"external_id": f"list_{i}", "email": f"l{i}@x.test"})
    first = api.get("/api/v1/customers?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get(first["next"]).json()
    assert {c["external_id"] for c in first["results"]}.isdisjoint(
        {c["external_id"] for c in second["results"]}
    )
    only = api.get("/api/v1/customers?email=l3@x.test").json()["results"]
    assert [c["external_id"] for c in only] == ["list_3"]
    assert api.get("/api/v1/customers?created_after=yesterday").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"external_id": ""},
        {"external_id": "has space"},
        {"external_id": "a/b"},
        {"external_id": "x" * 256},
        {"external_id": 12},
        {"external_id": "ok", "email": "not-an-email"},
        {"external_id": "ok", "metadata": ["a"]},
        {"external_id": "ok", "metadata": {"k": {"nested": 1}}},
        {"external_id": "ok", "metadata": {f"k{i}": "v" for i in range(51)}},
    ],
)
def test_bad_input_is_400_and_changes_nothing(alpha, body):
    response = _post(alpha.api(), body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["fields"]
    with tenant_context(alpha.tenant):
        assert not Customer.objects.exists()


def test_malformed_json_is_400(alpha):
    response = alpha.api().post("/api/v1/customers", '{"external_id": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_wrong_content_type_is_415(alpha):
    response = alpha.api().post(
        "/api/v1/customers", "external_id=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_oversized_body_is_413_and_changes_nothing(alpha, settings):
    settings.API_MAX_BODY_BYTES = 1024
    response = _post(alpha.api(), {"external_id": "big", "name": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    with tenant_context(alpha.tenant):
        assert not Customer.objects.filter(external_id="big").exists()


def test_idempotency_key_applies_once_and_replays(alpha):
    api = alpha.api()
    body = {"external_id": "idem_1", "email": "i@x.test"}
    first = _post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    # someone changes the customer in between; a retry must not re-apply the stale write
    api.patch("/api/v1/customers/idem_1", {"email": "changed@x.test"}, content_type="application/json")
    second = _post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    with tenant_context(alpha.tenant):
        assert Customer.objects.get(external_id="idem_1").email == "changed@x.test"


def test_idempotency_key_with_another_body_is_409(alpha):
    api = alpha.api()
    assert _post(api, {"external_id": "idem_2"}, HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201
    response = _post(api, {"external_id": "idem_3"}, HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    with tenant_context(alpha.tenant):
        assert not Customer.objects.filter(external_id="idem_3").exists()


def test_idempotency_keys_are_per_tenant(alpha, beta):
    assert _post(alpha.api(), {"external_id": "same"}, HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201
    assert _post(beta.api(), {"external_id": "other"}, HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201


def test_failed_request_does_not_burn_the_key(alpha):
    api = alpha.api()
    assert _post(api, {"external_id": "bad id"}, HTTP_IDEMPOTENCY_KEY="k-4").status_code == 400
    assert _post(api, {"external_id": "bad id"}, HTTP_IDEMPOTENCY_KEY="k-4").status_code == 400
    assert _post(api, {"external_id": "good"}, HTTP_IDEMPOTENCY_KEY="k-4").status_code == 201


def test_signup_creates_a_customer(alpha):
    alpha.client().post(
        "/accounts/signup/",
        {"email": "buyer@alpha.test", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"},
    )
    with tenant_context(alpha.tenant):
        customer = Customer.objects.get(email="buyer@alpha.test")
        assert (
            customer.user.email == "buyer@alpha.test" and customer.external_id == f"user_{customer.user.pk}"
        )


def test_concurrent_upserts_make_one_row(alpha):
    """Parallel POSTs of one new external_id, each on its own connection and committed: one row."""
    try:
        statuses = run_parallel(lambda i: _post(alpha.api(), {"external_id": "race"}).status_code, 8)
        assert sorted(statuses) == [200] * 7 + [201]
        assert committed(lambda: _count(alpha, "race")) == 1
    finally:
        committed(lambda: _delete(alpha, "race"))


def _count(fixture, external_id):
    with tenant_context(fixture.tenant):
        return Customer.objects.filter(external_id=external_id).count()


def _delete(fixture, external_id):
    with tenant_context(fixture.tenant):
        Customer.objects.filter(external_id=external_id).delete()


def test_unknown_tier_changes_nothing(alpha):
    response = _post(alpha.api(), {"external_id": "t1", "tier": "platinum"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_tier"
    with tenant_context(alpha.tenant):
        assert not Customer.objects.filter(external_id="t1").exists()
