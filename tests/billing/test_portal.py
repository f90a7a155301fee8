"""The customer portal: the pricing page's interval toggle and saving, the chosen plan carried
through sign-up to its checkout (seats for a per-seat price), each membership state's words and
actions, undoing a scheduled cancel, and the page waiting for the provider after an action."""

import datetime as dt
import re
from urllib.parse import quote

from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.memberships.models import Checkout, Membership
from billing.memberships.portal import membership_state
from tests.billing.test_sandbox_checkout import process_all, shop  # noqa: F401 (fixture)
from tests.conftest import PASSWORD


def _signed_up(fixture, email="portal@alpha.test", next_url=None):
    client = fixture.client()
    path = "/accounts/signup/" + (f"?next={quote(next_url)}" if next_url else "")
    body = {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    if next_url:
        body["next"] = next_url
    return client, client.post(path, body)


def test_pricing_page_toggles_monthly_and_yearly_with_the_saving(ci_catalog):
    monthly = ci_catalog.client().get("/pricing/").content.decode()
    assert "$49.00" in monthly and "$490.00" not in monthly
    assert 'data-testid="yearly-saving">save up to 16%' in monthly  # 12 × $49 = $588 vs $490
    yearly = ci_catalog.client().get("/pricing/?interval=year").content.decode()
    assert "$490.00" in yearly and "$49.00</strong>" not in yearly
    assert re.search(r"you save <strong>\$98\.00</strong> \(16%\)", yearly)
    assert "$40.83 a month, billed yearly" in yearly  # 49000 // 12
    assert "next=" + quote("/billing/checkout/?price=pro-yearly", safe="") in yearly
    assert "Sign up to subscribe" in yearly


def test_the_chosen_plan_survives_sign_up_and_seats_are_validated(shop):  # noqa: F811
    client, signed_up = _signed_up(shop, next_url="/billing/checkout/?price=pro-yearly")
    assert signed_up.status_code == 302 and signed_up["Location"] == "/billing/checkout/?price=pro-yearly"
    seats_page = client.get(signed_up["Location"])
    assert seats_page.status_code == 200 and 'name="seats"' in seats_page.content.decode()
    for bad in ("0", "abc", "10001", "2.5"):
        refused = client.post("/billing/checkout/", {"price": "pro-yearly", "seats": bad})
        assert refused.status_code == 400, bad
        assert "Enter a whole number of seats from 1 to 10,000." in refused.content.decode()
    with tenant_context(shop.tenant):
        assert not Checkout.objects.exists()
    started = client.post("/billing/checkout/", {"price": "pro-yearly", "seats": "3"})
    assert started.status_code == 302 and "/sandbox/checkout/" in started["Location"]
    with tenant_context(shop.tenant):
        checkout = Checkout.objects.get()
        assert checkout.quantity == 3 and checkout.price.code == "pro-yearly"
    unknown = client.get("/billing/checkout/?price=nope", follow=True)
    assert "There is no plan &#x27;nope&#x27;." in unknown.content.decode()


def _membership(**fields):
    now = timezone.now()
    base = dict(
        status="active", provider="sandbox", quantity=1, current_period_end=now + dt.timedelta(days=9)
    )
    return Membership(pk=1, tier_id=1, started_at=now, created_at=now, **(base | fields))


def test_each_state_has_its_actions():
    cases = {
        "trialing": (_membership(status="trialing"), {"change", "cancel", "cancel_now", "pause", "payment_method"}),
        "trial_ending": (_membership(status="trialing", cancel_at_period_end=True), {"uncancel", "cancel_now", "payment_method"}),
        "active": (_membership(), {"change", "cancel", "cancel_now", "pause", "payment_method"}),
        "cancel_scheduled": (_membership(cancel_at_period_end=True), {"uncancel", "cancel_now", "payment_method"}),
        "past_due": (_membership(status="past_due", past_due_since=timezone.now()), {"cancel_now", "payment_method"}),
        "paused": (_membership(status="paused"), {"resume", "cancel_now"}),
        "canceled": (_membership(status="canceled", ended_at=timezone.now()), set()),
    }  # fmt: skip
    for state, (membership, actions) in cases.items():
        got = membership_state(membership=membership)
        assert (got["state"], got["actions"]) == (state, actions)
    assert "payment_method" not in membership_state(membership=_membership(provider="manual"))["actions"]
    assert membership_state(membership=None)["state"] == "none"


def test_plan_page_words_per_state_and_undo_of_a_scheduled_cancel(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    capture = django_capture_on_commit_callbacks
    client, _ = _signed_up(shop)
    response = client.post("/billing/checkout/", {"price": "team-yearly"})
    with capture(execute=True):
        paid = client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    # the webhook has not been applied yet: the page waits for it, polling
    waiting = client.get(paid["Location"].replace("http://alpha.test", "")).content.decode()
    assert 'data-testid="confirming"' in waiting and "data-poll=" in waiting and "You are on" in waiting
    assert "Thank you! You are on" not in waiting
    state = client.get("/account/plan/state/").json()
    process_all(shop)
    assert client.get("/account/plan/state/").json()["fingerprint"] != state["fingerprint"]
    page = client.get(paid["Location"].replace("http://alpha.test", "")).content.decode()
    assert "Thank you! You are on <strong>Team</strong>" in page and "data-poll=" not in page
    assert "renews on" in page and "for $190.00" in page

    with capture(execute=True):
        canceled = client.post("/billing/membership/", {"action": "cancel_at_period_end"})
    assert canceled["Location"].startswith("/account/plan/?pending=")
    pending = client.get(canceled["Location"]).content.decode()
    assert "data-poll=" in pending and "Waiting for the provider" in pending  # webhook not applied yet
    process_all(shop)
    page = client.get(canceled["Location"]).content.decode()  # applied: no more waiting
    assert "data-poll=" not in page and "Cancels on" in page and "renews" not in page
    assert 'value="uncancel"' in page and 'value="cancel_at_period_end"' not in page
    for _ in range(2):  # the second click has nothing to undo: no error, no change
        with capture(execute=True):
            client.post("/billing/membership/", {"action": "uncancel"})
        process_all(shop)
    page = client.get("/account/plan/").content.decode()
    assert "renews on" in page and "Cancels on" not in page and "Unknown action" not in page
    with tenant_context(shop.tenant):
        assert Membership.objects.get(provider="sandbox").cancel_at_period_end is False

    with tenant_context(shop.tenant):
        Membership.objects.filter(provider="sandbox").update(status="past_due", past_due_since=timezone.now())
    page = client.get("/account/plan/").content.decode()
    assert 'role="alert" data-testid="past-due"' in page and "you keep it until" in page
    assert 'href="/sandbox/payment-method/"' in page
    with tenant_context(shop.tenant):
        Membership.objects.filter(provider="sandbox").update(status="paused")
    page = client.get("/account/plan/").content.decode()
    assert "Paused: resume it" in page and 'value="resume"' in page and "renews" not in page
    refused = client.post("/billing/membership/", {"action": "explode"}, follow=True)
    assert refused.status_code == 200 and "Unknown action." in refused.content.decode()


def test_a_manual_membership_undo_is_applied_at_once(ci_catalog):
    client, _ = _signed_up(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        from billing.memberships.models import Customer
        from billing.tiers.models import Tier

        customer = Customer.objects.get(email="portal@alpha.test")
        Membership.objects.create(
            customer=customer, tier=Tier.objects.get(code="team"), status="active", provider="manual",
            started_at=timezone.now(), current_period_end=timezone.now() + dt.timedelta(days=5),
            cancel_at_period_end=True,
        )  # fmt: skip
    done = client.post("/billing/membership/", {"action": "uncancel"})
    page = client.get(done["Location"]).content.decode()
    assert "data-poll=" not in page and "Your plan will renew again." in page and "renews on" in page


def test_a_subscribed_customer_switches_plan_from_the_pricing_page(shop, django_capture_on_commit_callbacks):  # noqa: F811
    """A second checkout would start a second subscription at the provider: with a live membership
    the pricing page offers "Switch to …" (a plan change) and marks the current plan."""
    capture = django_capture_on_commit_callbacks
    client, _ = _signed_up(shop)
    free = client.get("/pricing/").content.decode()
    assert re.search(r'data-tier="community".*?data-testid="your-plan"', free, re.S)
    response = client.post("/billing/checkout/", {"price": "team-monthly"})
    with capture(execute=True):
        client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    process_all(shop)
    page = client.get("/pricing/").content.decode()
    assert re.search(r'data-tier="team".*?data-testid="your-plan"', page, re.S)
    assert 'value="change" data-price="pro-monthly">Switch to Pro<' in page
    assert "/billing/checkout/?price=" not in page
    with capture(execute=True):
        client.post("/billing/membership/", {"action": "change", "price": "pro-monthly"})
    process_all(shop)
    with tenant_context(shop.tenant):
        assert Membership.objects.get(status__in=["active", "trialing"]).tier.code == "pro"
        assert Checkout.objects.count() == 1


def test_the_plan_page_never_shows_a_tier_other_than_the_membership_it_shows(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    """The tier on the plan page and the membership under it are read together: a page rendered just
    as the provider's webhook commits (before the entitlement cache hears of it) once showed "You
    are on Community" above "Thank you! You are on Pro", and stopped waiting -- the customer saw the
    old plan until the cache expired (the browser journey's intermittent failure)."""
    from billing.entitlements import receivers

    capture = django_capture_on_commit_callbacks
    client, _ = _signed_up(shop)
    response = client.post("/billing/checkout/", {"price": "team-yearly"})
    with capture(execute=True):
        paid = client.post(response["Location"], {"card": "4242 4242 4242 4242"})
    done = paid["Location"].replace("http://alpha.test", "")
    waiting = client.get(done).content.decode()  # the snapshot of the free plan is cached now
    assert 'data-testid="confirming"' in waiting and '<span data-testid="tier">Community</span>' in waiting
    # the webhook commits; the cache's invalidation is still on its way (kernel.invalidations may
    # even hold it until Redis answers again)
    monkeypatch.setattr(receivers.cache, "invalidate_many", lambda customers: None)
    process_all(shop)
    page = client.get(done).content.decode()
    assert "Thank you! You are on <strong>Team</strong>" in page
    assert '<span data-testid="tier">Team</span>' in page
