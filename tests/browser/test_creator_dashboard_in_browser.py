"""The creator dashboard in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px against the web server on committed data: a creator with two tiers, a member, tips on two videos
(one long item id) and a released earning reads their figures, tables and ledger; sets up payouts
through the sandbox's page and comes back active; a creator publishes, edits and deletes tiers
through the dashboard's forms and sees their channel page as fans do. No page may be wider than the
window, nor have a serious axe-core violation (the tier pages)."""

import datetime as dt

import pytest

from tests.browser.conftest import SIZES, accessible, click_confirmed, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.server, pytest.mark.timeout(300), needs_chromium]


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


@pytest.fixture
def creator_without_tiers(live_tenant):
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.ledger.creators.services import creator_for_user
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            creator_for_user(user=user_create(email="ann@live.test", password=PASSWORD, role=Role.CREATOR))

    committed(seed)


def _publish(page, **fields):
    for name, value in fields.items():
        page.fill(f"[name={name}]", value)
    with page.expect_navigation():
        page.click("[data-testid=save]")


@pytest.mark.parametrize("size", SIZES)
def test_a_creator_publishes_edits_and_deletes_tiers_and_fans_see_the_channel(
    server, browser, creator_without_tiers, shots, size
):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "ann@live.test")
    page.goto(f"{server}/creator/")
    tiers = page.locator("[data-testid=tiers]")
    assert "No tiers yet" in tiers.inner_text()
    with page.expect_navigation():
        tiers.locator("text=New tier").click()

    # a price that is no amount: the error beside the field, nothing published
    _publish(page, name="Gold", description="Early videos\nA monthly Q&A", monthly="five")
    assert page.locator("[data-testid=error-monthly]").inner_text() == "Enter an amount such as 12.50."
    assert page.input_value("[name=name]") == "Gold"  # what was typed stays
    accessible(page, "the tier form with an error")
    page.screenshot(path=str(shots / f"creator-tier-form-error-{size}.png"), full_page=True)

    _publish(page, monthly="5", yearly="50")
    assert "Gold is published" in page.locator(".messages").inner_text()
    with page.expect_navigation():
        page.click("[data-testid=tiers] >> text=New tier")
    _publish(page, name="Bronze", monthly="1")
    assert "Bronze is published" in page.locator(".messages").inner_text()
    row = page.locator("tr[data-tier=ann-gold]")
    assert "$5.00 / month" in row.inner_text() and "$50.00 / year" in row.inner_text()
    accessible(page, "the dashboard with two tiers")
    page.screenshot(path=str(shots / f"creator-tiers-{size}.png"), full_page=True)

    # edit Gold: a new name and a new monthly price
    with page.expect_navigation():
        page.click("[data-testid=edit-ann-gold]")
    assert page.input_value("[name=monthly]") == "5.00"
    _publish(page, name="Gold+", monthly="6")
    assert "Gold+ saved: new price $6.00 a month" in page.locator(".messages").inner_text()
    assert "$6.00 / month" in page.locator("tr[data-tier=ann-gold]").inner_text()

    # delete Bronze behind the layout's confirmation
    click_confirmed(page, "[data-testid=delete-ann-bronze]")
    assert "Bronze is deleted" in page.locator(".messages").inner_text()
    assert page.locator("tr[data-tier=ann-bronze]").count() == 0

    # the channel page, from the dashboard: what fans see
    with page.expect_navigation():
        page.click("[data-testid=channel-link]")
    assert page.url.endswith("/channels/ann/")
    cards = page.locator("[data-testid=channel-tiers] article")
    assert cards.count() == 1 and "$6.00 / month" in cards.first.inner_text()
    assert "Early videos" in cards.first.inner_text()
    accessible(page, "the channel page (its creator)")

    visitor = browser.new_page(viewport=SIZES[size])
    visitor.goto(f"{server}/channels/ann/")
    assert visitor.locator("[data-testid=channel-tiers] >> text=Join Gold+ monthly").count() == 1
    accessible(visitor, "the channel page (a visitor)")
    visitor.screenshot(path=str(shots / f"channel-page-visitor-{size}.png"), full_page=True)
    missing = visitor.goto(f"{server}/channels/nobody/")
    assert missing.status == 404 and "We could not find that page" in visitor.content()
