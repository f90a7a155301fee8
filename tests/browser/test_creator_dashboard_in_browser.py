"""The creator dashboard in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px against gunicorn on committed data: a creator with two tiers, a member, tips on two videos
(one long item id) and a released earning reads their figures, tables and ledger; sets up payouts
through the sandbox's page and comes back active. No page may be wider than the window."""

import datetime as dt

import pytest

from tests.browser.conftest import SIZES, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.server, pytest.mark.timeout(240), needs_chromium]


@pytest.fixture
def creator_with_earnings(live_tenant):
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.ledger.creators.earnings import earning_record, earnings_release
    from billing.ledger.creators.models import Tip
    from billing.ledger.creators.services import creator_for_user, creator_tier_create
    from billing.memberships.models import Payment
    from billing.memberships.services import customer_upsert
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user = user_create(email="ann@live.test", password=PASSWORD, role=Role.CREATOR)
            creator = creator_for_user(user=user)
            creator_tier_create(creator=creator, code="gold", name="Gold", amount=500, currency="usd")
            creator_tier_create(
                creator=creator, code="silver", name="Silver", amount=5000, currency="usd", interval="year"
            )
            fan, _ = customer_upsert(external_id="fan1")
            at = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
            for n, (amount, item) in enumerate(
                [(1000, "video-42"), (2500, "a-very-long-video-identifier-" + "x" * 60), (700, "")]
            ):
                tip = Tip.objects.create(
                    creator=creator,
                    customer=fan,
                    amount=amount,
                    currency="usd",
                    item_id=item,
                    provider="sandbox",
                    success_url="https://a.test",
                    cancel_url="https://a.test",
                )
                charge = Payment.objects.create(
                    customer=fan,
                    provider="sandbox",
                    provider_payment_id=f"pay_b{n}",
                    kind="charge",
                    amount=amount,
                    currency="usd",
                    occurred_at=at + dt.timedelta(days=n * 20),
                    fee_amount=30,
                )
                earning_record(payment=charge, checkout_id=str(tip.pk))
            earnings_release(provider="sandbox")

    committed(seed)


@pytest.mark.parametrize("size", SIZES)
def test_a_creator_reads_the_dashboard_and_sets_up_payouts(
    server, browser, creator_with_earnings, shots, size
):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "ann@live.test")
    if size == "phone":
        page.click("[data-nav-toggle]")  # the navigation folds behind "Menu" on a phone
    with page.expect_navigation():
        page.click("header nav a[href='/creator/']")
    figures = page.locator("[data-testid=balance-usd]").inner_text()
    assert "Available" in figures and "Lifetime" in figures
    assert "video-42" in page.content() and "Gold" in page.content()
    _fits(page, "the creator dashboard")
    page.screenshot(path=str(shots / f"creator-dashboard-{size}.png"), full_page=True)

    with page.expect_navigation():
        page.click("text=Set up payouts")
    assert "Set up payouts for" in page.content()
    _fits(page, "the sandbox onboarding page")
    with page.expect_navigation():
        page.click("text=Activate payouts")
    assert page.locator("[data-testid=payout-status]").inner_text() == "Active"
    _fits(page, "the dashboard after onboarding")
