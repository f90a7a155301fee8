import re

from django_tenants.utils import tenant_context

from billing.entitlements.models import CustomerApiKey
from billing.memberships.models import Customer
from tests.billing.test_entitlements import check
from tests.conftest import PASSWORD


def _signed_up(fixture, email="buyer@alpha.test"):
    client = fixture.client()
    response = client.post(
        "/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    return client


def test_pricing_page_lists_public_tiers_and_features(ci_catalog):
    page = ci_catalog.client().get("/pricing/").content.decode()
    for name in ("Community", "Team", "Pro"):
        assert f"<h2>{name}</h2>" in page
    assert "Enterprise" not in page  # private
    assert "$19.00" in page and "$49.00" in page and "14-day trial" in page
    assert "Private projects" in page and "300 / minute" in page


def test_pricing_page_with_no_catalog(beta):
    assert "No plans are published yet" in beta.client().get("/pricing/").content.decode()


def test_plan_page_shows_tier_usage_and_manages_keys(ci_catalog):
    client = _signed_up(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        customer = Customer.objects.get(email="buyer@alpha.test")
    ci_catalog.api().post(f"/api/v1/customers/{customer.external_id}", {}, content_type="application/json")
    ci_catalog.api().post(
        "/api/v1/customers",
        {"external_id": customer.external_id, "tier": "team"},
        content_type="application/json",
    )
    ci_catalog.api().post(
        f"/api/v1/customers/{customer.external_id}/counters/private_projects",
        {"delta": 4},
        content_type="application/json",
    )

    page = client.get("/account/plan/").content.decode()
    assert 'data-testid="tier">Team<' in page
    assert re.search(
        r'data-feature="private_projects".*?aria-valuenow="4"[^>]*aria-valuemax="10".*?width: 40%', page, re.S
    )
    assert re.search(r'data-feature="sso".*?Not in your plan', page, re.S)

    created = client.post("/account/plan/", {"action": "create", "name": "laptop"})
    secret = re.search(r"sk-alpha-[0-9a-f]{32}", created.content.decode()).group()
    assert created["Cache-Control"] == "no-store"
    assert secret not in client.get("/account/plan/").content.decode()  # shown once
    verified = ci_catalog.api().post("/api/v1/keys/verify", {"key": secret}, content_type="application/json")
    assert verified.json()["customer"] == customer.external_id

    with tenant_context(ci_catalog.tenant):
        key = CustomerApiKey.objects.get()
    rotated = client.post("/account/plan/", {"action": "rotate", "key_id": key.pk})
    new_secret = re.search(r"sk-alpha-[0-9a-f]{32}", rotated.content.decode()).group()
    assert new_secret != secret
    with tenant_context(ci_catalog.tenant):
        newest = CustomerApiKey.objects.filter(revoked_at__isnull=True).get()
    client.post("/account/plan/", {"action": "revoke", "key_id": newest.pk})
    assert (
        ci_catalog.api()
        .post("/api/v1/keys/verify", {"key": new_secret}, content_type="application/json")
        .status_code
        == 401
    )


def test_plan_page_cannot_touch_another_customers_keys(ci_catalog):
    ci_catalog.api().post("/api/v1/customers", {"external_id": "other"}, content_type="application/json")
    other = (
        ci_catalog.api().post("/api/v1/customers/other/api-keys", {}, content_type="application/json").json()
    )
    client = _signed_up(ci_catalog)
    assert client.post("/account/plan/", {"action": "revoke", "key_id": other["id"]}).status_code == 404
    with tenant_context(ci_catalog.tenant):
        assert CustomerApiKey.objects.get(pk=other["id"]).revoked_at is None


def test_plan_page_needs_login(ci_catalog):
    response = ci_catalog.client().get("/account/plan/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_owner_sets_rate_limit_failure_mode(alpha):
    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert client.get("/settings/").status_code == 200
    assert client.post("/settings/", {"rate_limit_failure_mode": "closed"}).status_code == 302
    from tenants.models import Tenant

    assert Tenant.objects.get(pk=alpha.tenant.pk).rate_limit_failure_mode == "closed"
    assert client.post("/settings/", {"rate_limit_failure_mode": "sideways"}).status_code == 200  # form error
    assert Tenant.objects.get(pk=alpha.tenant.pk).rate_limit_failure_mode == "closed"
    customer = _signed_up(alpha, "c@alpha.test")
    assert customer.get("/settings/").status_code == 403


def test_staff_change_a_customers_tier_and_overrides_in_the_admin(ci_catalog):
    ci_catalog.api().post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert check(ci_catalog, feature="custom_runners").json()["allowed"] is False  # cached
    client = ci_catalog.client()
    client.post("/accounts/login/", {"login": ci_catalog.owner_email, "password": PASSWORD})
    with tenant_context(ci_catalog.tenant):
        customer = Customer.objects.get(external_id="c1")
        from billing.tiers.models import Feature, Tier

        pro = Tier.objects.get(code="pro")
        sso = Feature.objects.get(code="sso")
    form = {
        "external_id": "c1", "email": "", "name": "", "metadata": "{}", "user": "", "tier": pro.pk,
        "overrides-TOTAL_FORMS": "1", "overrides-INITIAL_FORMS": "0", "overrides-MIN_NUM_FORMS": "0", "overrides-MAX_NUM_FORMS": "1000",
        "overrides-0-feature": sso.pk, "overrides-0-enabled": "true", "overrides-0-note": "trial",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = client.post(f"/admin/memberships/customer/{customer.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert check(ci_catalog, feature="custom_runners").json()["allowed"] is True
    assert check(ci_catalog, feature="sso").json()["allowed"] is True


def test_plan_page_says_each_membership_state_plainly(ci_catalog):
    """No "canceled, renews …" and no "payment went through" above the free plan: each state has its
    words, numbers have separators, and a checkout still being confirmed says so and looks again."""
    import datetime as dt
    import re

    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from billing.memberships.models import Membership
    from billing.memberships.services import customer_for_user
    from billing.tiers.models import Price
    from tests.conftest import PASSWORD

    client = ci_catalog.client()
    client.post(
        "/accounts/signup/", {"email": "kim@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    waiting = client.get("/account/plan/?checkout=done").content.decode()
    assert "confirming your payment" in waiting and "data-poll=" in waiting
    assert "went through" not in waiting and "Thank you! You are on" not in waiting
    end = timezone.now() + dt.timedelta(days=20)
    with tenant_context(ci_catalog.tenant):
        from accounts.models import User

        customer = customer_for_user(user=User.objects.get(email="kim@example.com"))
        price = Price.objects.get(code="team-monthly")
        membership = Membership.objects.create(
            customer=customer, tier=price.tier, price=price, status="active", provider="sandbox",
            started_at=timezone.now(), current_period_start=timezone.now(), current_period_end=end,
        )  # fmt: skip
    page = client.get("/account/plan/?checkout=done").content.decode()
    assert "Thank you! You are on <strong>Team</strong>" in page and "data-poll=" not in page
    assert "renews on <time datetime=" in page and f"{end:%b} {end.day}, {end.year}" in page
    assert "for $19.00" in page
    assert not re.search(r">\d{4,}<|\b\d{4,} of\b", page)  # allowances and usage have separators
    for change, words in (
        ({"cancel_at_period_end": True}, "Cancels on"),
        ({"status": "past_due", "past_due_since": timezone.now()}, "Your last payment failed"),
        (
            {"status": "canceled", "ended_at": timezone.now(), "cancel_at_period_end": False},
            "membership was canceled on",
        ),
    ):
        with tenant_context(ci_catalog.tenant):
            Membership.objects.filter(pk=membership.pk).update(**change)
        page = client.get("/account/plan/").content.decode()
        assert words in page and "renews" not in page, words
