"""The customer pages in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px, against gunicorn on committed data: the owner opens the customer list, searches, opens a
customer, adds credits and sees the new balance and the ledger entry, then cancels the subscription
through the confirmation dialog. Every step is screenshotted to test-artifacts/ (or $SCREENSHOT_DIR)
and no page may be wider than the window."""

from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, click_confirmed, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.server, pytest.mark.timeout(240), needs_chromium]


@pytest.fixture
def customers(live_tenant):
    """An owner; Grace (Pro, 3 seats, with usage, an invoice and an API key) and a few others."""
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.entitlements.services import customer_key_create
    from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
    from billing.memberships.models import Membership
    from billing.memberships.services import customer_upsert
    from billing.metering.ingest import events_ingest
    from billing.tiers.models import Price
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="owner@live.test", password=PASSWORD, role=Role.OWNER)
            grace, _ = customer_upsert(
                external_id="grace-hopper-with-a-rather-long-external-id-0001",
                email="grace.hopper@navy.example.com",
                name="Grace Hopper",
            )
            price = Price.objects.get(code="pro-monthly")
            Membership.objects.create(
                customer=grace,
                tier=price.tier,
                price=price,
                status="active",
                quantity=3,
                started_at=timezone.now(),
            )
            now = timezone.now()
            events_ingest(
                events=[{"id": f"g{i}", "customer": grace.external_id, "type": "build.finished",
                         "timestamp": now.isoformat(), "properties": {"minutes": 1250 * (i + 1)}} for i in range(3)]
            )  # fmt: skip
            draft, _ = invoice_draft_create(
                customer=grace,
                currency="usd",
                lines=[LineDraft(kind="fee", description="Pro × 3", amount=14_700)],
            )
            invoice_finalize(invoice_id=draft.pk)
            customer_key_create(customer=grace, name="CI runner")
            for i, name in enumerate(["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"]):
                customer_upsert(external_id=f"user-{i}", email=f"user{i}@example.com", name=name)

    committed(seed)


@pytest.mark.parametrize("size", SIZES)
def test_owner_adds_credits_to_a_customer(server, browser, customers, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    if size == "phone":  # the navigation folds behind its Menu button
        page.click("[data-nav-toggle]")
    with page.expect_navigation():
        page.click("#site-nav >> text=Customers")
    assert page.url.endswith("/customers/")
    rows = page.locator("[data-testid=customers] tbody tr")
    assert rows.count() == 5  # c1 from the live tenant, Grace and three more
    _fits(page, "the customer list")
    page.screenshot(path=str(shots / f"customers-list-{size}.png"), full_page=True)

    page.fill("input[name=q]", "hopper")
    with page.expect_navigation():
        page.click("form[role=search] button[type=submit]")
    assert rows.count() == 1 and "$147.00" in rows.first.inner_text()  # 3 seats × $49
    with page.expect_navigation():
        page.click("text=Grace Hopper")
    assert "/customers/grace-hopper-with-a-rather-long-external-id-0001/" in page.url
    assert page.locator("[data-testid=tier]").inner_text() == "Pro"
    assert page.locator("[data-testid=credit-balance]").inner_text() == "0"
    assert "7,500" in page.locator("[data-testid=usage]").inner_text()  # 1,250 + 2,500 + 3,750 build minutes
    _fits(page, "the customer page")
    page.screenshot(path=str(shots / f"customer-page-{size}.png"), full_page=True)

    page.click("text=Add credits")
    form = page.locator("[data-testid=credits-form]")
    form.locator("input[name=amount]").fill("2,500")
    form.locator("input[name=reason]").fill("Goodwill after the outage")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "2,500 credits added" in page.locator(".messages").inner_text()
    assert page.locator("[data-testid=credit-balance]").inner_text() == "2,500"
    assert "Goodwill after the outage" in page.locator("[data-testid=credit-ledger]").inner_text()
    _fits(page, "the customer page after adding credits")
    page.screenshot(path=str(shots / f"customer-credits-added-{size}.png"), full_page=True)

    page.click("text=Cancel subscription")
    form = page.locator("[data-testid=cancel-form]")
    form.locator("select[name=when]").select_option("now")
    click_confirmed(page, "[data-testid=cancel-form] button[type=submit]")
    assert "subscription is canceled" in page.locator(".messages").inner_text()
    assert (
        page.locator("[data-testid=customer-head] [data-status]").first.get_attribute("data-status")
        == "canceled"
    )
    _fits(page, "the customer page after canceling")
    page.screenshot(path=str(shots / f"customer-canceled-{size}.png"), full_page=True)
