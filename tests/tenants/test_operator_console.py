"""The operator's console on the bare host: superusers create, suspend, resume and delete tenants;
a suspended tenant's site and API answer 403 while its provider webhooks still land."""

import pytest
from django.test import Client
from django_tenants.utils import schema_exists

from accounts.models import User
from tenants.middleware import tenant_cache_clear
from tenants.models import Domain, Tenant
from tests.conftest import PASSWORD


@pytest.fixture
def operator(db):
    User.objects.create_superuser(email="root@operator.test", password=PASSWORD)
    client = Client(HTTP_HOST="localhost")
    response = client.post("/admin/login/", {"username": "root@operator.test", "password": PASSWORD})
    assert response.status_code == 302
    return client


def _text(response) -> str:
    return " ".join(response.content.decode().split())


def test_anonymous_visitors_are_asked_to_log_in_and_cannot_act(alpha):
    client = Client(HTTP_HOST="localhost")
    page = client.get("/")
    assert page.status_code == 200 and "Log in as the operator" in _text(page) and "alpha" not in _text(page)
    assert client.post("/tenants/alpha/suspend/").status_code == 403
    assert Tenant.objects.get(slug="alpha").suspended_at is None


def test_a_tenant_is_created_from_the_console_and_answers_at_its_host(operator):
    response = operator.post("/", {"slug": "gamma-co", "name": "Gamma Co", "domain": ""}, follow=True)
    assert response.status_code == 200
    assert "Created Gamma Co: it answers at gamma-co." in _text(response)
    tenant = Tenant.objects.get(slug="gamma-co")
    assert (
        schema_exists(tenant.schema_name) and Domain.objects.filter(tenant=tenant, is_primary=True).exists()
    )
    host = Domain.objects.get(tenant=tenant).domain
    assert Client(HTTP_HOST=host).get("/pricing/").status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slug": "Bad Slug!", "name": "X"}, "Slug must be 3-40 characters"),
        ({"slug": "admin", "name": "X"}, "is reserved"),
        ({"slug": "alpha", "name": "Again"}, "already exists"),
        ({"slug": "delta", "name": "D", "domain": "not a host"}, "is not a valid host name"),
        ({"slug": "", "name": ""}, "This field is required"),
    ],
)
def test_bad_tenant_input_is_a_form_error_and_creates_nothing(operator, alpha, data, message):
    before = Tenant.objects.count()
    response = operator.post("/", data)
    assert response.status_code == 200 and message in _text(response)
    assert Tenant.objects.count() == before


def test_a_suspended_tenant_answers_403_then_comes_back(operator, alpha):
    response = operator.post("/tenants/alpha/suspend/", follow=True)
    assert "is suspended" in _text(response)
    assert 'data-status="suspended"' in response.content.decode()
    tenant_cache_clear()
    page = alpha.client().get("/pricing/")
    assert page.status_code == 403 and "not available" in _text(page)
    api = alpha.api().get("/api/v1/customers")
    assert api.status_code == 403 and api.json()["error"]["code"] == "tenant_suspended"
    # a provider's webhook still reaches its inbox (verification then judges it): not a 403
    assert (
        alpha.client().post("/webhooks/sandbox/", b"{}", content_type="application/json").status_code != 403
    )
    operator.post("/tenants/alpha/resume/")
    assert alpha.client().get("/pricing/").status_code == 200
    assert alpha.api().get("/api/v1/customers").status_code == 200


def test_deleting_needs_the_slug_typed_and_then_drops_the_schema(operator, alpha, beta):
    wrong = operator.post("/tenants/beta/delete/", {"confirm": "alpha"}, follow=True)
    assert "nothing was deleted" in _text(wrong) and Tenant.objects.filter(slug="beta").exists()
    schema = Tenant.objects.get(slug="beta").schema_name
    done = operator.post("/tenants/beta/delete/", {"confirm": "beta"}, follow=True)
    assert "Deleted" in _text(done)
    assert not Tenant.objects.filter(slug="beta").exists() and not schema_exists(schema)


def test_unknown_tenants_and_actions_are_404(operator, alpha):
    assert operator.post("/tenants/nope/suspend/").status_code == 404
    assert operator.post("/tenants/alpha/explode/").status_code == 404
    assert operator.get("/tenants/alpha/suspend/").status_code == 405
