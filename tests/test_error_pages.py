"""403/404/500 pages in the product's style; the 500 page renders without the database."""

from django.test import RequestFactory

from monetize import handlers


def test_500_page_needs_no_database():
    # no `db` fixture: any query here would raise
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = handlers.server_error(RequestFactory().get("/account/plan/"))
    body = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in body
    assert "/static/css/app.css" in body and "favicon.svg" in body


def test_404_and_403_pages_are_the_products(alpha):
    client = alpha.client()
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "We could not find that page" in response.content.decode()
    assert client.get("/api/v1/no-such-endpoint").json()["error"]["code"] == "not_found"  # JSON stays JSON
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.conftest import PASSWORD

    with tenant_context(alpha.tenant):
        user_create(email="someone@alpha.test", password=PASSWORD, role=Role.CUSTOMER)
    client.post("/accounts/login/", {"login": "someone@alpha.test", "password": PASSWORD})
    response = client.get("/invoices/")
    assert response.status_code == 403 and "You may not open this page" in response.content.decode()


def test_pages_show_the_persona_navigation_and_flash_messages(alpha):
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.conftest import PASSWORD

    with tenant_context(alpha.tenant):
        user_create(email="fin@alpha.test", password=PASSWORD, role=Role.FINANCE)
    anonymous = alpha.client().get("/pricing/").content.decode()
    assert 'href="/accounts/login/"' in anonymous and 'href="/invoices/"' not in anonymous
    client = alpha.client()
    client.post("/accounts/login/", {"login": "fin@alpha.test", "password": PASSWORD})
    page = client.get("/invoices/").content.decode()
    assert '<a href="/invoices/" aria-current="page">Invoices</a>' in page
    assert 'href="/settings/api-keys/"' not in page  # owners only
    assert 'id="confirm-dialog"' in page and "/static/vendor/htmx.org/dist/htmx.min.js" in page
