"""Checkout through the built-in sandbox provider, then renewals and dunning on its clock."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent
from billing.memberships.models import Checkout, Membership, Payment
from billing.providers.services import provider_account_upsert
from tests.billing.test_entitlements import check, make_customer
from tests.billing.test_webhooks_in import process_all


@pytest.fixture
def shop(ci_catalog, monkeypatch, django_capture_on_commit_callbacks):
    """alpha with the CI catalog, the sandbox provider and customer c1; broker calls recorded."""
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    make_customer(ci_catalog)
    return ci_catalog


def start_checkout(fixture, **body):
    payload = {
        "customer": "c1",
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/no",
        **body,
    }
    return fixture.api().post("/api/v1/checkouts", payload, content_type="application/json")


def pay(fixture, url, card, capture):
    path = re.sub(r"^https?://[^/]+", "", url)
    with capture(execute=True):  # the sandbox delivers its signed webhooks once its writes commit
        return fixture.client().post(path, {"card": card})


def advance(fixture, days, capture):
    out = StringIO()
    with capture(execute=True):
        call_command("sandbox_advance", "--tenant", "alpha", "--days", str(days), stdout=out)
    process_all(fixture)
    return out.getvalue()


def membership(fixture):
    with tenant_context(fixture.tenant):
        return Membership.objects.filter(provider="sandbox").order_by("-id").first()


def test_checkout_pays_and_upgrades_through_webhooks(shop, django_capture_on_commit_callbacks):
    created = start_checkout(shop, tier="team")
    assert created.status_code == 201
    body = created.json()
    assert body["url"].startswith("http://alpha.test/sandbox/checkout/") and body["price"] == "team-monthly"
    page = shop.client().get(re.sub(r"^https?://[^/]+", "", body["url"]))
    assert page.status_code == 200 and "$19.00" in page.content.decode()

    declined = pay(shop, body["url"], "4000 0000 0000 0002", django_capture_on_commit_callbacks)
    assert declined.status_code == 402 and "declined" in declined.content.decode()
    with tenant_context(shop.tenant):
        assert not InboxEvent.objects.exists()

    paid = pay(shop, body["url"], "4242 4242 4242 4242", django_capture_on_commit_callbacks)
    assert paid.status_code == 302 and paid["Location"] == "https://app.test/ok"
    assert check(shop, feature="private_projects").json()["tier"] == "community"  # not applied yet
    process_all(shop)
    assert check(shop, feature="private_projects").json()["tier"] == "team"
    m = membership(shop)
    assert m.status == "trialing" and m.price.code == "team-monthly"  # 14-day trial, no charge yet
    with tenant_context(shop.tenant):
        assert Checkout.objects.get().status == "completed"
        assert list(InboxEvent.objects.values_list("event_type", flat=True)) == ["subscription.created"]
    # paying the same checkout again changes nothing
    pay(shop, body["url"], "4242 4242 4242 4242", django_capture_on_commit_callbacks)
    with tenant_context(shop.tenant):
        assert InboxEvent.objects.count() == 1


def test_renewal_rolls_the_period(shop, django_capture_on_commit_callbacks):
    url = start_checkout(shop, price="pro-yearly").json()["url"]
    pay(shop, url, "4242424242424242", django_capture_on_commit_callbacks)
    process_all(shop)
    first_end = membership(shop).current_period_end
    output = advance(shop, 370, django_capture_on_commit_callbacks)
    assert "renew → active" in output
    m = membership(shop)
    assert m.status == "active" and m.current_period_end > first_end
    with tenant_context(shop.tenant):
        charges = list(Payment.objects.filter(kind="charge").values_list("amount", "currency"))
    assert charges == [(49000, "usd"), (49000, "usd")]  # the first year and the renewal, once each


def test_trial_then_failed_renewal_runs_dunning_to_the_free_tier(shop, django_capture_on_commit_callbacks):
    url = start_checkout(shop, tier="pro").json()["url"]  # pro-monthly has a 14-day trial
    pay(shop, url, "4000 0000 0000 0341", django_capture_on_commit_callbacks)
    process_all(shop)
    assert membership(shop).status == "trialing"
    assert check(shop, feature="custom_runners").json()["allowed"] is True

    advance(shop, 15, django_capture_on_commit_callbacks)  # the trial ends, the charge fails
    assert membership(shop).status == "past_due"
    assert check(shop, feature="custom_runners").json()["allowed"] is True  # past_due keeps entitlements
    advance(shop, 2, django_capture_on_commit_callbacks)  # retry 1 (+2 days)
    advance(shop, 3, django_capture_on_commit_callbacks)  # retry 2 (+5 days)
    assert membership(shop).status == "past_due"
    output = advance(shop, 2, django_capture_on_commit_callbacks)  # retry 3 (+7 days) fails: canceled
    assert "retry → canceled" in output
    assert membership(shop).status == "canceled"
    assert check(shop, feature="custom_runners").json()["allowed"] is False
    assert check(shop, feature="custom_runners").json()["tier"] == "community"
    with tenant_context(shop.tenant):
        assert Payment.objects.filter(kind="failed").count() == 4  # the renewal and three retries
        assert not Payment.objects.filter(kind="charge").exists()  # the trial was free


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"tier": "team", "price": "team-monthly"}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"tier": "nope"}, 404, "unknown_tier"),
        ({"price": "nope"}, 400, "invalid_checkout"),
        ({"tier": "community"}, 400, "invalid_checkout"),
        ({"tier": "team", "customer": "ghost"}, 404, "unknown_customer"),
        ({"tier": "team", "success_url": "not a url"}, 400, "invalid_request"),
        ({"tier": "team", "provider": "stripe"}, 409, "provider_not_configured"),
    ],
)
def test_bad_checkouts_are_refused(shop, body, status, code):
    response = start_checkout(shop, **body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    with tenant_context(shop.tenant):
        assert not Checkout.objects.exists()


def test_unknown_card_and_unknown_checkout(shop, django_capture_on_commit_callbacks):
    url = start_checkout(shop, tier="team").json()["url"]
    response = pay(shop, url, "1234", django_capture_on_commit_callbacks)
    assert response.status_code == 402 and "test card" in response.content.decode()
    assert shop.client().get("/sandbox/checkout/nope/").status_code == 404


def test_a_fresh_tenant_checks_out_through_the_sandbox(ci_catalog):
    from billing.providers.models import ProviderAccount

    make_customer(ci_catalog)
    assert start_checkout(ci_catalog, tier="team").status_code == 201
    with tenant_context(ci_catalog.tenant):
        account = ProviderAccount.objects.get()
        assert (account.provider, account.is_default) == ("sandbox", True)
        assert (
            account.webhook_secret.startswith("whsec_") and "whsec_" not in account.webhook_secret_encrypted
        )


def test_cancel_at_period_end_through_the_provider(shop, django_capture_on_commit_callbacks):
    url = start_checkout(shop, price="pro-yearly").json()["url"]
    pay(shop, url, "4242424242424242", django_capture_on_commit_callbacks)
    process_all(shop)
    current = shop.api().get("/api/v1/customers/c1/membership").json()
    assert current["tier"] == "pro" and current["membership"]["status"] == "active"
    with django_capture_on_commit_callbacks(execute=True):
        response = shop.api().post(
            f"/api/v1/memberships/{current['membership']['id']}/cancel",
            {"at_period_end": True},
            content_type="application/json",
        )
    assert response.status_code == 202
    process_all(shop)
    assert membership(shop).cancel_at_period_end is True and membership(shop).status == "active"
    advance(shop, 370, django_capture_on_commit_callbacks)
    assert membership(shop).status == "canceled"
    assert shop.api().get("/api/v1/customers/c1/membership").json()["tier"] == "community"
    again = shop.api().post(
        f"/api/v1/memberships/{current['membership']['id']}/cancel", {}, content_type="application/json"
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "membership_not_live"
    assert (
        shop.api().post("/api/v1/memberships/999999/cancel", {}, content_type="application/json").status_code
        == 404
    )


def test_cancel_a_manual_membership_now(shop):
    shop.api().post(
        "/api/v1/customers", {"external_id": "c1", "tier": "team"}, content_type="application/json"
    )
    current = shop.api().get("/api/v1/customers/c1/membership").json()
    assert current["membership"]["provider"] == "manual"
    response = shop.api().post(
        f"/api/v1/memberships/{current['membership']['id']}/cancel",
        {"at_period_end": False},
        content_type="application/json",
    )
    assert response.status_code == 202 and response.json()["status"] == "canceled"
    assert check(shop, feature="private_projects").json()["tier"] == "community"


def test_pricing_page_subscribe_button_runs_the_whole_flow(shop, django_capture_on_commit_callbacks):
    from tests.conftest import PASSWORD

    anonymous = shop.client().get("/pricing/").content.decode()
    assert "Sign up to subscribe" in anonymous
    client = shop.client()
    client.post(
        "/accounts/signup/", {"email": "buyer@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert 'data-price="pro-monthly"' in client.get("/pricing/").content.decode()
    response = client.post("/billing/checkout/", {"price": "pro-monthly"})
    assert response.status_code == 302 and "/sandbox/checkout/" in response["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    assert paid["Location"].startswith("http://alpha.test/account/plan/?checkout=done&pending=")
    process_all(shop)
    page = client.get("/account/plan/?checkout=done").content.decode()
    assert 'data-testid="tier">Pro<' in page and "Free trial until" in page
    response = client.post("/billing/checkout/", {"price": "team-yearly"})  # no trial: charged at once
    with django_capture_on_commit_callbacks(execute=True):
        client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    process_all(shop)
    page = client.get("/account/plan/").content.decode()
    assert 'data-testid="tier">Team<' in page and "<h2>Payments</h2>" in page and "$190.00" in page


def test_unpaid_checkouts_expire(shop):
    import datetime as dt

    from billing.memberships.services import checkouts_expire

    start_checkout(shop, tier="team")
    with tenant_context(shop.tenant):
        checkout = Checkout.objects.get()
        assert checkouts_expire() == 0
        assert checkouts_expire(now=checkout.expires_at + dt.timedelta(seconds=1)) == 1
        checkout.refresh_from_db()
        assert checkout.status == "expired"


def _subscribe(shop, capture, price="team-yearly"):
    url = start_checkout(shop, price=price).json()["url"]
    pay(shop, url, "4242424242424242", capture)
    process_all(shop)
    return shop.api().get("/api/v1/customers/c1/membership").json()["membership"]["id"]


def _post(shop, path, body, capture):
    with capture(execute=True):
        response = shop.api().post(path, body, content_type="application/json")
    process_all(shop)
    return response


def test_upgrade_now_with_prorated_charge_then_downgrade_at_period_end(
    shop, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    membership_id = _subscribe(shop, capture)  # team-yearly: $190
    up = _post(shop, f"/api/v1/memberships/{membership_id}/change", {"price": "pro-yearly"}, capture)
    assert up.status_code == 202 and up.json() == {"applies": "now"}
    assert membership(shop).price.code == "pro-yearly"
    assert check(shop, feature="custom_runners").json()["allowed"] is True
    with tenant_context(shop.tenant):
        proration = Payment.objects.filter(kind="charge").order_by("id").last().amount
    assert 0 < proration <= 49000 - 19000  # the difference for (almost) the whole year, rounded down

    down = _post(shop, f"/api/v1/memberships/{membership_id}/change", {"price": "team-yearly"}, capture)
    assert down.json() == {"applies": "at_period_end"}
    assert membership(shop).price.code == "pro-yearly"  # until the period ends
    advance(shop, 370, capture)
    assert membership(shop).price.code == "team-yearly" and membership(shop).status == "active"


def test_pause_and_resume(shop, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    membership_id = _subscribe(shop, capture, price="pro-yearly")
    assert _post(shop, f"/api/v1/memberships/{membership_id}/pause", {}, capture).status_code == 202
    assert membership(shop).status == "paused"
    assert check(shop, feature="custom_runners").json()["tier"] == "community"  # paused: the free tier
    again = _post(shop, f"/api/v1/memberships/{membership_id}/pause", {}, capture)
    assert again.status_code == 409
    _post(shop, f"/api/v1/memberships/{membership_id}/resume", {}, capture)
    assert (
        membership(shop).status == "active"
        and check(shop, feature="custom_runners").json()["allowed"] is True
    )


def test_manual_membership_changes_seats_at_once(shop):
    shop.api().post(
        "/api/v1/customers", {"external_id": "c1", "tier": "team"}, content_type="application/json"
    )
    membership_id = shop.api().get("/api/v1/customers/c1/membership").json()["membership"]["id"]
    response = shop.api().post(
        f"/api/v1/memberships/{membership_id}/change", {"quantity": 5}, content_type="application/json"
    )
    assert response.json() == {"applies": "now"}
    assert shop.api().get("/api/v1/customers/c1/membership").json()["membership"]["quantity"] == 5
    bad = shop.api().post(f"/api/v1/memberships/{membership_id}/change", {}, content_type="application/json")
    assert bad.status_code == 400


def test_grace_period_ends_entitlements_during_dunning(shop, settings, django_capture_on_commit_callbacks):
    settings.DUNNING_GRACE_DAYS = 3
    capture = django_capture_on_commit_callbacks
    url = start_checkout(shop, price="pro-monthly").json()["url"]  # 14-day trial
    pay(shop, url, "4000 0000 0000 0341", capture)
    process_all(shop)
    advance(shop, 14.5, capture)  # the trial ends on day 14 and the charge fails: past due
    assert membership(shop).status == "past_due"
    assert check(shop, feature="custom_runners").json()["allowed"] is True  # within the grace period
    advance(shop, 1, capture)  # 1.5 days after the failure
    assert check(shop, feature="custom_runners").json()["allowed"] is True
    advance(shop, 2, capture)  # 3.5 days after: grace over while still past due (a retry failed meanwhile)
    assert membership(shop).status == "past_due"
    body = check(shop, feature="custom_runners").json()
    assert body["allowed"] is False and body["tier"] == "community"


def test_portal_link(shop, django_capture_on_commit_callbacks):
    membership_id = _subscribe(shop, django_capture_on_commit_callbacks)
    assert shop.api().get(f"/api/v1/memberships/{membership_id}/portal").json() == {
        "url": "http://alpha.test/sandbox/payment-method/"
    }
    shop.api().post(
        "/api/v1/customers", {"external_id": "m2", "tier": "team"}, content_type="application/json"
    )
    manual = shop.api().get("/api/v1/customers/m2/membership").json()["membership"]["id"]
    response = shop.api().get(f"/api/v1/memberships/{manual}/portal")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_portal"


def test_billing_page_changes_pauses_resumes_and_links_the_portal(shop, django_capture_on_commit_callbacks):
    from tests.conftest import PASSWORD

    capture = django_capture_on_commit_callbacks
    client = shop.client()
    client.post(
        "/accounts/signup/", {"email": "page@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    response = client.post("/billing/checkout/", {"price": "team-yearly"})
    with capture(execute=True):
        client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    process_all(shop)
    page = client.get("/account/plan/").content.decode()
    assert 'value="pro-yearly"' in page and "Update payment method" in page

    def act(**form):
        with capture(execute=True):
            result = client.post("/billing/membership/", form)
        process_all(shop)
        return result

    act(action="change", price="pro-yearly")
    assert 'data-testid="tier">Pro<' in client.get("/account/plan/").content.decode()
    act(action="pause")
    page = client.get("/account/plan/").content.decode()
    assert (
        "Paused: resume it" in page and 'value="resume"' in page and 'data-testid="tier">Community<' in page
    )
    act(action="resume")
    assert 'data-testid="tier">Pro<' in client.get("/account/plan/").content.decode()
    portal = act(action="portal")
    assert portal.status_code == 302 and portal["Location"] == "http://alpha.test/sandbox/payment-method/"
    refused = act(action="resume")  # not paused: a readable error, nothing changes
    assert refused.status_code == 302
    assert "cannot be resumed" in client.get("/account/plan/").content.decode()


def test_a_past_due_customer_updates_the_card_and_the_overdue_invoice_is_paid(
    shop, django_capture_on_commit_callbacks
):
    """ "Manage payment details" on a past-due sandbox membership opens the sandbox's portal: a new
    card is saved and the open renewal invoice is charged again at once."""
    from billing.invoicing.models import Invoice
    from tests.conftest import PASSWORD

    capture = django_capture_on_commit_callbacks
    client = shop.client()
    client.post(
        "/accounts/signup/", {"email": "late@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    response = client.post("/billing/checkout/", {"price": "team-yearly"})
    with capture(execute=True):
        client.post(response["Location"], {"card": "4000 0000 0000 0341"})  # pays now, fails at renewal
    process_all(shop)
    advance(shop, 370, capture)
    page = client.get("/account/plan/").content.decode()
    assert "Your last payment failed" in page and "Update payment method" in page
    portal = client.get("/sandbox/payment-method/").content.decode()
    assert "•••• 0341" in portal and "Save and pay now" in portal
    declined = client.post("/sandbox/payment-method/", {"card": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and "declined" in declined.content.decode()
    with capture(execute=True):
        saved = client.post("/sandbox/payment-method/", {"card": "4242 4242 4242 4242"}, follow=True)
    process_all(shop)
    assert "the overdue payment went through" in saved.content.decode()
    m = membership(shop)
    assert m.status == "active"
    with tenant_context(shop.tenant):
        renewal = Invoice.objects.filter(billing_reason="subscription_cycle").get()
        assert renewal.status == "paid" and renewal.amount_paid == renewal.total == 19_000
    page = client.get("/account/plan/").content.decode()
    assert "renews on" in page and "Your last payment failed" not in page
