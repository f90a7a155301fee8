"""PostgreSQL unreachable: a retryable 503 (JSON with Retry-After for the API, a page for people),
never a 500. The shared server is never stopped: the request runs in a thread whose connection
points at a closed port."""

import socket

from django.db import connection
from django.test import Client

from tests.helpers import committed


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connections are refused


def _without_database(request):
    """Run request() on a fresh connection to a port where nothing listens."""
    port = _closed_port()

    def run():
        connection.settings_dict = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": port}
        return request()

    return committed(run)


def _check(fixture):
    client = Client(
        HTTP_HOST=fixture.host, HTTP_AUTHORIZATION=f"Bearer {fixture.api_key}", raise_request_exception=False
    )
    return client.post(
        "/api/v1/entitlements/check", {"customer": "c1", "feature": "sso"}, content_type="application/json"
    )


def test_api_answers_503_database_unavailable_when_tenant_routing_cannot_query(alpha):
    response = _without_database(lambda: _check(alpha))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0


def test_api_view_answers_503_when_its_query_fails(alpha):
    alpha.api().get("/api/v1/customers")  # the tenant is routed from the in-process cache from now on
    response = _without_database(lambda: _check(alpha))
    assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0


def test_pages_answer_a_readable_503(alpha):
    response = _without_database(
        lambda: Client(HTTP_HOST=alpha.host, raise_request_exception=False).get("/accounts/login/")
    )
    assert response.status_code == 503 and response["Retry-After"]
    assert response["Content-Type"].startswith("text/html")
    assert b"Back in a moment" in response.content
