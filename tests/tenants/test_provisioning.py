import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.models import IntegratorApiKey, User
from accounts.services import tenant_provision
from tenants.exceptions import TenantExists, TenantValidationError
from tenants.models import Domain, Tenant
from tenants.services import tenant_create, tenant_delete


def _tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_provisioned_tenant_is_a_full_clone_of_the_template(db, settings):
    # when
    result = tenant_provision(
        slug="gamma", name="Gamma", owner_email="o@gamma.test", owner_password="pw-12345678"
    )
    # then: same tables as the template, migrations recorded, owner and key in the new schema only
    assert schema_exists("gamma")
    assert _tables("gamma") == _tables(settings.TENANT_BASE_SCHEMA)
    assert {"accounts_user", "accounts_integratorapikey", "django_migrations"} <= _tables("gamma")
    with schema_context("gamma"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'accounts'")
            assert cursor.fetchone()[0] >= 1
        assert list(User.objects.values_list("email", "role")) == [("o@gamma.test", "owner")]
        assert IntegratorApiKey.objects.get().prefix == result.api_key_secret[:12]
    with schema_context(settings.TENANT_BASE_SCHEMA):
        assert not User.objects.exists()
    assert result.domain == "gamma.localhost"
    assert Domain.objects.get(domain="gamma.localhost").tenant == result.tenant


def test_provisioned_tenant_serves_its_api_at_once(db):
    result = tenant_provision(slug="delta", name="Delta", domain="delta.test")
    from django.test import Client

    response = Client(HTTP_HOST="delta.test", HTTP_AUTHORIZATION=f"Bearer {result.api_key_secret}").get(
        "/api/v1/me"
    )
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "delta"


@pytest.mark.parametrize(
    "slug",
    [
        "ab",
        "A-corp",
        "1acme",
        "acme-",
        "ac--me",
        "acme_co",
        "x" * 41,
        "public",
        "www",
        "admin",
        "api",
        "pg-x",
        "",
    ],
)
def test_invalid_or_reserved_slugs_are_refused_and_create_nothing(db, slug):
    before = Tenant.objects.count()
    with pytest.raises(TenantValidationError):
        tenant_create(slug=slug, name="x")
    assert Tenant.objects.count() == before


def test_duplicate_slug_or_domain_is_refused(db, alpha):
    with pytest.raises(TenantExists):
        tenant_create(slug="alpha", name="Again")
    with pytest.raises(TenantExists):
        tenant_create(slug="alpha-two", name="Again", domain=alpha.host)
    assert not schema_exists("alpha_two")


def test_delete_drops_schema_and_rows(db):
    tenant = tenant_create(slug="epsilon", name="Epsilon")
    tenant_delete(tenant=tenant)
    assert not schema_exists("epsilon")
    assert not Tenant.objects.filter(slug="epsilon").exists()
    assert not Domain.objects.filter(domain="epsilon.localhost").exists()


def test_cli_create_json_list_and_delete(db):
    out = StringIO()
    call_command(
        "tenant_create",
        slug="zeta",
        name="Zeta",
        domain="zeta.test",
        owner_email="o@zeta.test",
        json=True,
        stdout=out,
    )
    body = json.loads(out.getvalue())
    assert body["slug"] == "zeta" and body["domain"] == "zeta.test" and body["schema"] == "zeta"
    assert body["api_key"].startswith("mk_test_") and len(body["api_key"]) == 48

    out = StringIO()
    call_command("tenant_list", json=True, stdout=out)
    assert "zeta" in {row["slug"] for row in json.loads(out.getvalue())}

    call_command("tenant_delete", slug="zeta", yes=True, stdout=StringIO())
    assert not schema_exists("zeta")


def test_cli_delete_asks_first(db, monkeypatch):
    tenant_create(slug="eta", name="Eta")
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError):
        call_command("tenant_delete", slug="eta", stdout=StringIO())
    assert schema_exists("eta")


def test_cli_create_reports_bad_slug(db):
    with pytest.raises(CommandError, match="lowercase"):
        call_command("tenant_create", slug="Bad Slug", name="x", stdout=StringIO())


def test_unknown_host_is_404_for_pages_and_api(db):
    from django.test import Client

    assert Client(HTTP_HOST="nobody.test").get("/").status_code == 404
    response = Client(HTTP_HOST="nobody.test").get("/api/v1/me")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_host"


def test_spare_schema_makes_creation_a_rename(db, settings):
    from tenants.services import spare_schemas, spares_refill

    assert spares_refill(count=2) == 2
    spares = spare_schemas()
    assert len(spares) == 2 and all(_tables(s) == _tables(settings.TENANT_BASE_SCHEMA) for s in spares)
    result = tenant_provision(
        slug="theta", name="Theta", owner_email="o@theta.test", owner_password="pw-12345678"
    )
    assert len(spare_schemas()) == 1  # one was renamed into the tenant
    assert _tables("theta") == _tables(settings.TENANT_BASE_SCHEMA)
    with schema_context("theta"):
        assert User.objects.get().email == "o@theta.test"
    assert result.tenant.schema_name == "theta"


def test_stale_spare_is_never_used_and_refill_replaces_it(db, settings):
    from tenants.services import spare_schemas, spares_refill

    spares_refill(count=1)
    (stale,) = spare_schemas()
    with connection.cursor() as cursor:  # as if the template got a migration after this clone
        cursor.execute(f'DELETE FROM "{stale}".django_migrations WHERE app = %s', ["accounts"])
    tenant_create(slug="iota", name="Iota")
    assert spare_schemas() == [stale]  # not taken: iota was cloned inline
    with schema_context("iota"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'accounts'")
            assert cursor.fetchone()[0] >= 1
    assert spares_refill(count=1) == 1
    assert stale not in spare_schemas() and len(spare_schemas()) == 1
