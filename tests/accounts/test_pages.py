import re

from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail
from django_tenants.utils import tenant_context

from accounts.keys import key_hash
from accounts.models import IntegratorApiKey, User
from accounts.roles import Role
from accounts.services import user_create
from tests.conftest import PASSWORD


def _login(fixture, email=None):
    client = fixture.client()
    response = client.post("/accounts/login/", {"login": email or fixture.owner_email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def test_signup_creates_a_customer_and_sends_verification(alpha):
    client = alpha.client()
    response = client.post(
        "/accounts/signup/",
        {"email": "new@alpha.test", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"},
    )
    assert response.status_code == 302
    with tenant_context(alpha.tenant):
        assert User.objects.get(email="new@alpha.test").role == Role.CUSTOMER
    assert any("new@alpha.test" in m.to for m in mail.outbox)
    assert re.search(r"/accounts/confirm-email/\S+", mail.outbox[-1].body)


def test_verification_email_greets_with_the_tenants_name_not_its_host(alpha):
    alpha.client().post(
        "/accounts/signup/",
        {"email": "greet@alpha.test", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"},
    )
    message = next(m for m in mail.outbox if "greet@alpha.test" in m.to)
    assert "Hello from Alpha!" in message.body
    assert alpha.host not in message.body.split("\n")[0]
    assert message.subject.startswith("[Alpha] ")


def test_password_reset_sends_mail(alpha):
    alpha.client().post("/accounts/password/reset/", {"email": alpha.owner_email})
    assert any(alpha.owner_email in m.to for m in mail.outbox)


def test_totp_mfa_is_enforced_at_login(alpha):
    with tenant_context(alpha.tenant):
        user = User.objects.get(email=alpha.owner_email)
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
    client = alpha.client()
    response = client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert response.status_code == 302 and "/accounts/2fa/authenticate/" in response["Location"]
    assert client.get("/dashboard/").status_code == 302  # not logged in before the code
    code = format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_owner_manages_keys_on_the_developers_page(alpha):
    client = _login(alpha)
    response = client.post("/developers/keys/", {"action": "create", "name": "deploy", "scopes": ["read"]})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(rb"mk_test_[A-Za-z0-9]{40}", response.content).group().decode()
    with tenant_context(alpha.tenant):
        key = IntegratorApiKey.objects.get(key_hash=key_hash(secret))
        assert key.scopes == ["read"] and key.name == "deploy"
    # shown once: the next page load lists only the prefix
    page = client.get("/developers/keys/").content.decode()
    assert secret not in page and secret[:12] in page

    response = client.post("/developers/keys/", {"action": "rotate", "key_id": key.pk})
    rotated = re.search(rb"mk_test_[A-Za-z0-9]{40}", response.content).group().decode()
    assert rotated != secret
    client.post("/developers/keys/", {"action": "revoke", "key_id": key.pk})
    with tenant_context(alpha.tenant):
        key.refresh_from_db()
        assert key.revoked_at is not None and key.rotated_to.key_hash == key_hash(rotated)


def test_keys_page_is_for_owners_only(beta):
    assert beta.client().get("/developers/keys/").status_code == 302  # anonymous → login
    client = _login(beta, "customer@beta.test")
    assert client.get("/developers/keys/").status_code == 403
    with tenant_context(beta.tenant):
        user_create(email="admin@beta.test", password=PASSWORD, role=Role.ADMIN)
    assert _login(beta, "admin@beta.test").get("/developers/keys/").status_code == 403


def test_tenant_admin_by_role(beta):
    owner = _login(beta)
    index = owner.get("/admin/")
    assert index.status_code == 200
    assert b"Integrator API keys" in index.content
    assert b"Tenants" not in index.content  # public rows are the operator's
    assert owner.get("/admin/tenants/tenant/").status_code == 403
    customer = _login(beta, "customer@beta.test")
    assert customer.get("/admin/").status_code == 302  # not staff: sent to the admin login


def test_admin_creates_key_and_shows_it_once(alpha):
    client = _login(alpha)
    response = client.post(
        "/admin/accounts/integratorapikey/add/",
        {"name": "from admin", "scopes": ["read", "write"], "mode": "test"},
    )
    assert response.status_code == 200
    secret = re.search(rb"mk_test_[A-Za-z0-9]{40}", response.content).group().decode()
    with tenant_context(alpha.tenant):
        assert IntegratorApiKey.objects.filter(key_hash=key_hash(secret), name="from admin").exists()


def test_operator_console_lists_tenants_for_superusers(db):
    from django.test import Client

    User.objects.create_superuser(email="root@operator.test", password=PASSWORD)
    client = Client(HTTP_HOST="localhost")
    assert client.get("/").status_code == 200
    assert (
        client.post("/admin/login/", {"username": "root@operator.test", "password": PASSWORD}).status_code
        == 302
    )
    page = client.get("/").content
    assert b"alpha" in page and b"beta" in page
    assert client.get("/admin/tenants/tenant/").status_code == 200
