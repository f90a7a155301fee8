"""The customer's journey in a real browser (Debian's chromium through Playwright) against the web server
and a Celery worker, at 1280 and 390 px: pricing → yearly → sign up with that plan → its checkout
(seats) → the sandbox's checkout → pays → the plan page shows the paid tier by itself (it polls until
the webhook lands) → cancel (scheduled, with its date) → undo. No horizontal scroll; screenshots in
test-artifacts/."""

from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, click_confirmed, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.worker, pytest.mark.server, pytest.mark.timeout(300), needs_chromium]


def _shot(page, shots, name, size):
    page.screenshot(path=str(shots / f"portal-{name}-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_customer_pricing_to_paid_plan_cancel_and_undo(server, worker, browser, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    page.goto(f"{server}/pricing/")
    page.click("[data-interval=year]")
    page.wait_for_url("**/pricing/?interval=year")
    assert "you save" in page.locator("[data-tier=pro]").inner_text()
    _fits(page, "the pricing page")
    _shot(page, shots, "pricing-yearly", size)

    with page.expect_navigation(url="**/accounts/signup/**"):
        page.click("[data-tier=pro] a[data-price=pro-yearly]")
    page.fill("input[name=email]", f"journey-{size}@live.test")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    with page.expect_navigation(url="**/billing/checkout/?price=pro-yearly"):
        page.click("form button[type=submit]")
    _fits(page, "the seats page")
    _shot(page, shots, "seats", size)
    page.fill("input[name=seats]", "0")
    page.click("button[type=submit]")
    page.wait_for_selector("#seats-error")
    page.fill("input[name=seats]", "2")
    with page.expect_navigation(url="**/sandbox/checkout/**"):
        page.click("button[type=submit]")
    assert "$980.00" in page.content()  # 2 seats × $490
    _fits(page, "the sandbox checkout")
    _shot(page, shots, "sandbox-checkout", size)
    page.fill("input[name=card]", "4242 4242 4242 4242")
    with page.expect_navigation(url="**/account/plan/?checkout=done*"):
        page.click("button[type=submit]")

    # no manual reload: the page polls until the worker has applied the webhook
    page.wait_for_selector("[data-testid=tier]:text('Pro')", timeout=45_000)
    page.wait_for_load_state()
    assert "renews on" in page.locator("[data-testid=membership]").inner_text()
    _fits(page, "the plan page")
    _shot(page, shots, "plan-paid", size)

    click_confirmed(page, "button[value=cancel_at_period_end]")
    page.wait_for_selector("[data-testid=plan][data-state=cancel_scheduled]", timeout=45_000)
    text = page.locator("[data-testid=membership]").inner_text()
    assert "Cancels on" in text and "renews" not in text
    _fits(page, "the plan page, cancel scheduled")
    _shot(page, shots, "plan-cancel-scheduled", size)

    with page.expect_navigation():
        page.click("button[value=uncancel]")
    page.wait_for_selector("[data-testid=plan][data-state=active]", timeout=45_000)
    assert "renews on" in page.locator("[data-testid=membership]").inner_text()
    _shot(page, shots, "plan-undone", size)
