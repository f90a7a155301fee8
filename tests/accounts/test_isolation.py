"""Tenant A and tenant B never see each other: logins, sessions, API keys, rows."""

from django.db import connection
from django_tenants.utils import schema_context

from accounts.keys import key_hash
from accounts.models import IntegratorApiKey, User
from tests.conftest import PASSWORD


def test_owner_logs_in_on_own_tenant(alpha):
    client = alpha.client()
    response = client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_user_of_a_cannot_log_in_on_b(alpha, beta):
    client = beta.client()
    response = client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    assert b"not correct" in response.content or b"incorrect" in response.content.lower()
    assert client.get("/dashboard/").status_code == 302  # still anonymous


def test_session_from_a_is_not_valid_on_b(alpha, beta):
    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert client.get("/dashboard/").status_code == 200
    # the same cookie jar presented to tenant B's host
    response = client.get("/dashboard/", HTTP_HOST=beta.host)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_key_of_a_is_401_on_b(alpha, beta):
    assert alpha.api().get("/api/v1/me").status_code == 200
    response = beta.api(alpha.api_key).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_rows_of_a_are_invisible_from_b_at_query_level(alpha, beta):
    with schema_context(alpha.tenant.schema_name):
        assert IntegratorApiKey.objects.filter(key_hash=key_hash(alpha.api_key)).exists()
        alpha_users = set(User.objects.values_list("email", flat=True))
    with schema_context(beta.tenant.schema_name):
        assert not IntegratorApiKey.objects.filter(key_hash=key_hash(alpha.api_key)).exists()
        beta_users = set(User.objects.values_list("email", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("SELECT email FROM accounts_user")  # unqualified: the search path decides
            assert {row[0] for row in cursor.fetchall()} == beta_users
    assert alpha_users == {"owner@alpha.test"}
    assert beta_users == {"owner@beta.test", "customer@beta.test"}
