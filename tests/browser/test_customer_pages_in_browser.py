"""The owner's journey through the customer pages in a real browser (Debian's chromium driven by
Playwright) at 1280 px and 390 px, against the web server on committed data (issue 13: overview →
customer → refund → credits): the owner lands on the overview, opens the customer list, searches,
opens a customer, refunds part of a paid invoice through the confirmation dialog (a credit note,
refunded through the sandbox) and sees the feedback and the new state, adds credits and sees the new
balance and the ledger entry, then cancels the subscription. Every step is screenshotted to
test-artifacts/ (or $SCREENSHOT_DIR) and no page may be wider than the window."""

import re
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
    """An owner; Grace (Pro, 3 seats, with usage, an invoice paid through the sandbox and an API key)
    and a few others."""
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.entitlements.services import customer_key_create
    from billing.invoicing.services import (
        LineDraft,
        engine_invoice_ref,
        invoice_draft_create,
        invoice_finalize,
    )
    from billing.memberships.models import Membership, MembershipHistory
    from billing.memberships.services import customer_upsert, payment_record
    from billing.metering.ingest import events_ingest
    from billing.providers.base import PaymentState
    from billing.providers.services import provider_account_upsert
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
            membership = Membership.objects.create(
                customer=grace,
                tier=price.tier,
                price=price,
                status="active",
                quantity=3,
                started_at=timezone.now(),
            )
            # as the membership services record it: the overview counts subscriptions from the history
            MembershipHistory.objects.create(
                membership=membership, status="active", tier=price.tier, quantity=3, reason="manual"
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
            invoice = invoice_finalize(invoice_id=draft.pk)
            provider_account_upsert(provider="sandbox")
            payment_record(
                provider="sandbox", event_type="payment.succeeded", occurred_at=now, event_id="evt_grace_paid",
                payment=PaymentState(payment_id="pay_grace", amount=invoice.total, currency="usd",
                                     customer=grace.external_id, invoice=engine_invoice_ref(invoice)),
            )  # fmt: skip
            customer_key_create(customer=grace, name="CI runner")
            for i, name in enumerate(["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"]):
                customer_upsert(external_id=f"user-{i}", email=f"user{i}@example.com", name=name)

    return committed(seed)


def _settled(page):
    """No htmx request in flight before a form is sent: the field last typed in is blurred (its
    change event fires now, not as the button is clicked), then nothing may be loading."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=15_000)


@pytest.mark.parametrize("size", SIZES)
def test_owner_refunds_and_adds_credits_to_a_customer(server, browser, customers, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    assert page.url.endswith("/dashboard/")  # the overview is the owner's home
    assert page.locator("h1").first.inner_text() == "Overview"
    assert "$147.00" in page.locator("[data-figure=mrr]").inner_text()  # Grace: 3 seats of Pro at $49
    assert page.locator("[data-figure=subscriptions] .figure-value").inner_text() == "1 active"
    _fits(page, "the overview")
    page.screenshot(path=str(shots / f"owner-overview-{size}.png"), full_page=True)
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

    # refund one seat of the paid invoice: a credit note, the money back through the sandbox
    invoice = page.locator("[data-testid=invoices] tbody tr").first
    assert "Paid" in invoice.inner_text() and "$147.00" in invoice.inner_text()
    page.locator("[data-testid=actions] summary", has_text="Refund").click()
    form = page.locator("[data-testid=refund-form]")
    assert form.locator("select[name=invoice] option:checked").inner_text().startswith("$147.00 paid · ")
    form.locator("input[name=amount]").fill("49.00")
    form.locator("select[name=reason]").select_option("product_unsatisfactory")
    form.locator("input[name=memo]").fill("One seat was never used")
    refund = form.locator("input[name=refund]")
    assert refund.is_checked() and refund.bounding_box()["width"] >= 12  # a box to tick, not a sliver
    _fits(page, "the customer page's refund form")
    page.screenshot(path=str(shots / f"customer-refund-form-{size}.png"), full_page=True)
    _settled(page)
    click_confirmed(page, "[data-testid=refund-form] button[type=submit]")
    message = page.locator(".messages").inner_text()
    assert re.search(r"Credit note \S+ issued: \$49\.00 refunded through sandbox\.", message), message
    note = page.locator("[data-testid=payments] [data-credit-note]")
    assert note.count() == 1 and "Refunded" in note.inner_text() and "$49.00" in note.inner_text()
    _fits(page, "the customer page after the refund")
    page.screenshot(path=str(shots / f"customer-refunded-{size}.png"), full_page=True)

    page.click("text=Add credits")
    form = page.locator("[data-testid=credits-form]")
    form.locator("input[name=amount]").fill("2,500")
    form.locator("input[name=reason]").fill("Goodwill after the outage")
    _settled(page)
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
