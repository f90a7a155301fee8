"""The invoice pages in a real browser (Debian's chromium driven by Playwright) at 1280 px and 390 px,
against the web server on committed data: a customer finds their invoices from the plan page, opens a tier
breakdown and downloads a PDF; the owner filters the invoice list, opens an invoice, marks it
uncollectible and voids it. Each step is screenshotted (to $SCREENSHOT_DIR, else the test's tmp dir)
and no page may be wider than the window."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, click_confirmed, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.server,
    pytest.mark.timeout(240),
    needs_chromium,
]


@pytest.fixture
def billed(live_tenant):
    """An owner, a customer on Enterprise with 60,000 build minutes this period and three invoices
    (paid, open, void), a customer with none yet but a discount, and other customers' invoices in usd and krw."""
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.discounts.services import coupon_create
    from billing.invoicing.rating import breakdown_rows, rate
    from billing.invoicing.selectors import price_terms
    from billing.invoicing.services import (
        LineDraft,
        engine_invoice_ref,
        invoice_draft_create,
        invoice_finalize,
        invoice_void,
    )
    from billing.memberships.models import Membership
    from billing.memberships.services import (
        customer_discount_apply,
        customer_for_user,
        customer_upsert,
        payment_record,
    )
    from billing.metering.ingest import events_ingest
    from billing.providers.base import PaymentState
    from billing.tiers.models import Price
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="owner@live.test", password=PASSWORD, role=Role.OWNER)
            buyer = customer_for_user(user=user_create(email="buyer@live.test", password=PASSWORD))
            newcomer = customer_for_user(user=user_create(email="new@live.test", password=PASSWORD))
            coupon_create(
                code="WELCOME", percent_off=Decimal(25), duration="repeating", duration_in_periods=3
            )
            customer_discount_apply(customer=newcomer, coupon_code="WELCOME")  # before their first invoice
            buyer.name = "Grace Hopper"
            buyer.save(update_fields=["name"])
            minutes = Price.objects.get(code="enterprise-minutes")
            now = timezone.now()
            start = now - dt.timedelta(days=10)
            Membership.objects.create(
                customer=buyer, tier=minutes.tier, status="active", quantity=1, started_at=start - dt.timedelta(days=62),
                current_period_start=start, current_period_end=start + dt.timedelta(days=30),
            )  # fmt: skip
            events_ingest(
                events=[{"id": "b1", "customer": buyer.external_id, "type": "build.finished",
                         "timestamp": (now - dt.timedelta(hours=2)).isoformat(), "properties": {"minutes": 60_000}}]
            )  # fmt: skip

            def usage(quantity, months_ago):
                rated = rate(price_terms(minutes), Decimal(quantity))
                begin = start - dt.timedelta(days=31 * months_ago)
                return LineDraft(
                    kind="usage", description=f"Build minutes: {quantity:,} minutes", amount=rated.amount,
                    quantity=Decimal(quantity), unit_amount=Decimal(0), price_id=minutes.pk,
                    meter="build-minutes", period_start=begin, period_end=begin + dt.timedelta(days=31),
                    breakdown=breakdown_rows(rated),
                )  # fmt: skip

            def issue(customer, lines, currency="usd", **extra):
                invoice, _ = invoice_draft_create(customer=customer, currency=currency, lines=lines, **extra)
                return invoice_finalize(invoice_id=invoice.pk)

            def billed_usage(customer, quantity, months_ago):
                line = usage(quantity, months_ago)
                return issue(customer, [line], period_start=line.period_start, period_end=line.period_end)

            paid = billed_usage(buyer, 182_000, 2)
            for kind, payment_id in (("payment.failed", "pay_declined"), ("payment.succeeded", "pay_ok")):
                payment_record(
                    provider="sandbox", event_type=kind, occurred_at=timezone.now(), event_id=f"evt_{payment_id}",
                    payment=PaymentState(payment_id=payment_id, amount=paid.total, currency="usd",
                                         customer=buyer.external_id, invoice=engine_invoice_ref(paid)),
                )  # fmt: skip
            voided = issue(buyer, [LineDraft(kind="adjustment", description="Setup fee", amount=25_000)])
            invoice_void(invoice_id=voided.pk)
            open_ = billed_usage(buyer, 64_250, 1)
            ada, _ = customer_upsert(external_id="ada", email="ada@example.com", name="Ada Lovelace")
            issue(ada, [LineDraft(kind="fee", description="Pro (monthly) × 3 seats", amount=14_700,
                                  quantity=Decimal(3), unit_amount=Decimal(4900))])  # fmt: skip
            seoul, _ = customer_upsert(external_id="seoul-1", email="minji@example.kr", name="Kim Min-ji")
            issue(seoul, [LineDraft(kind="fee", description="Team (monthly)", amount=39_000)], currency="krw")
            return {"paid": paid.number, "paid_id": paid.pk, "open": open_.number, "void": voided.number}

    return committed(seed)


@pytest.mark.parametrize("size", SIZES)
def test_customer_finds_invoices_and_downloads_a_pdf(server, browser, billed, shots, size):
    page = browser.new_page(viewport=SIZES[size], accept_downloads=True)
    _login(page, server, "buyer@live.test")
    page.goto(f"{server}/account/plan/")
    with page.expect_navigation():
        page.click("text=Invoices & receipts")
    assert page.url.endswith("/account/billing/")
    assert page.locator("[data-testid=upcoming-total]").inner_text() == "$1,099.00"  # $999 + 10,000 × 1¢
    rows = page.locator("[data-testid=invoices] tbody tr")
    assert rows.count() == 3
    paid = page.locator(f"tr[data-invoice='{billed['paid']}']")
    assert "Paid" in paid.inner_text() and "$2,319.00" in paid.inner_text()  # $999 + 132,000 × 1¢
    page.locator("[data-testid=upcoming] details summary").first.click()
    _fits(page, "the billing page")
    page.screenshot(path=str(shots / f"customer-billing-{size}.png"), full_page=True)

    with page.expect_download() as download:
        page.locator(f"tr[data-invoice='{billed['open']}'] a", has_text="Download PDF").click()
    path = download.value.path()
    assert download.value.suggested_filename == f"{billed['open']}.pdf"
    assert Path(path).read_bytes().startswith(b"%PDF")

    fresh = browser.new_page(viewport=SIZES[size])
    _login(fresh, server, "new@live.test")
    fresh.goto(f"{server}/account/billing/")
    assert fresh.locator("[data-testid=no-invoices]").is_visible()
    assert fresh.locator("[data-testid=no-upcoming] a", has_text="See plans").is_visible()
    discount = fresh.locator("[data-testid=discount]").inner_text()
    assert discount == "Your discount: WELCOME, 25% off, for 3 invoices."
    _fits(fresh, "the empty billing page")
    fresh.screenshot(path=str(shots / f"customer-billing-empty-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_owner_filters_opens_and_voids_an_invoice(server, browser, billed, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    page.goto(f"{server}/dashboard/")
    if size == "phone":
        page.click("[data-nav-toggle]")  # the navigation folds behind "Menu" on a phone
    with page.expect_navigation():
        page.click("header nav >> text=Invoices")
    assert page.locator("[data-testid=invoices] tbody tr").count() == 5
    assert "₩39,000" in page.locator("[data-currency=krw]").inner_text()
    _fits(page, "the invoice list")
    page.screenshot(path=str(shots / f"staff-list-{size}.png"), full_page=True)

    with page.expect_navigation():
        page.click("[data-tab=open]")
    assert page.locator("[data-testid=invoices] tbody tr").count() == 3
    page.fill("input[name=q]", "grace")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator("[data-testid=invoices] tbody tr").count() == 1
    page.screenshot(path=str(shots / f"staff-list-filtered-{size}.png"), full_page=True)
    page.fill("input[name=q]", "nobody-here")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator("[data-testid=no-match]").is_visible()
    page.screenshot(path=str(shots / f"staff-list-empty-{size}.png"), full_page=True)

    page.goto(f"{server}/invoices/?q=grace&status=open")
    with page.expect_navigation():
        page.click(f"text={billed['open']}")
    page.locator("details.breakdown summary").first.click()
    assert "Tiered" in page.content() and "50,001 – 250,000" in page.content()
    _fits(page, "the invoice page")
    page.screenshot(path=str(shots / f"staff-invoice-{size}.png"), full_page=True)

    paid = browser.new_page(viewport=SIZES[size])
    paid.context.add_cookies(page.context.cookies())
    paid.goto(f"{server}/invoices/{billed['paid_id']}/")
    assert paid.locator("[data-payment=pay_declined]").is_visible()
    assert paid.locator("[data-action=void], [data-action=mark-uncollectible]").count() == 0
    assert paid.locator("#credit input[name=refund]").is_visible()  # it went through the sandbox
    _fits(paid, "the paid invoice page")
    paid.screenshot(path=str(shots / f"staff-invoice-paid-{size}.png"), full_page=True)

    page.click("[data-action=open-credit]")
    page.fill("#credit input[name=amount]", "141.50")
    page.select_option("#credit select[name=reason]", "order_change")
    page.fill("#credit input[name=memo]", "Minutes of a failed build")
    click_confirmed(page, "[data-action=credit]")
    assert "$141.50 off what is due" in page.locator(".messages").inner_text()
    assert page.locator("[data-testid=amount-due]").inner_text() == "$1,000.00"
    assert "Minutes of a failed build" in page.locator("[data-testid=credit-notes]").inner_text()
    _fits(page, "the credited invoice page")
    page.screenshot(path=str(shots / f"staff-invoice-credited-{size}.png"), full_page=True)

    click_confirmed(page, "[data-action=mark-uncollectible]")
    assert "is now uncollectible" in page.locator(".messages").inner_text()
    assert page.locator("h1 [data-status]").inner_text() == "Uncollectible"
    click_confirmed(page, "[data-action=void]")
    assert "is now void" in page.locator(".messages").inner_text()
    assert page.locator("h1 [data-status]").inner_text() == "Void"
    assert page.locator("[data-action]").count() == 0
    _fits(page, "the voided invoice page")
    page.screenshot(path=str(shots / f"staff-invoice-voided-{size}.png"), full_page=True)
