import yaml


def test_unknown_api_path_is_json_404(alpha):
    response = alpha.api().get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint.", "details": {}}}


def test_wrong_method_is_json_405(alpha):
    response = alpha.api().delete("/api/v1/me")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_openapi_schema_and_docs(alpha):
    client = alpha.client()
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/me" in schema["paths"] and "/api/v1/customers" in schema["paths"]
    assert schema["components"]["securitySchemes"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_every_api_post_honours_idempotency_key():
    """Guard for endpoints to come: each /api/v1/ view's `post` is @idempotent or explicitly exempt."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def api_views(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from api_views(p.url_patterns, route)
            elif (
                isinstance(p, URLPattern)
                and route.startswith("api/v1/")
                and hasattr(p.callback, "view_class")
            ):
                yield route, p.callback.view_class

    found = dict(api_views(get_resolver("monetize.urls_tenant").url_patterns))
    assert "api/v1/customers" in found
    missing = [
        route
        for route, view in found.items()
        if hasattr(view, "post")
        and not getattr(view.post, "idempotent", False)
        and not getattr(view.post, "idempotency_exempt", None)
    ]
    exempt = {
        route
        for route, view in found.items()
        if getattr(getattr(view, "post", None), "idempotency_exempt", None)
    }
    assert exempt == {
        "api/v1/entitlements/check",
        "api/v1/keys/verify",
        "api/v1/customers/<str:external_id>/leases/<slug:feature>/<str:lease_id>/renew",
        "api/v1/events",
    }
    assert missing == []


def test_the_openapi_schema_has_every_endpoint_and_no_warnings(alpha, tmp_path):
    """drf-spectacular silently drops a view whose responses it cannot guess: fail on any warning."""
    import yaml
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--urlconf", "monetize.urls_tenant", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]
    for path in ("/api/v1/events", "/api/v1/meters", "/api/v1/usage", "/api/v1/usage/unsynced",
                 "/api/v1/customers/{external_id}/usage", "/api/v1/customers/{external_id}/credits",
                 "/api/v1/ai-costs", "/api/v1/customers/{external_id}/ai-costs"):  # fmt: skip
        assert path in paths, path
