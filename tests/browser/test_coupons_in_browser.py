"""Coupons and tax rates in a real browser (Debian's chromium via Playwright) at 1280 and 390 px
against the web server: the owner goes Catalog → Coupons, creates a coupon through the form (a refused
percent first, shown beside its field), sees it listed with a flash message, deactivates it through
the layout's confirmation dialog (Cancel first: nothing happens), gives one to a customer on the
customer page, and adds a tax rate. Screenshots go to test-artifacts/ (or $SCREENSHOT_DIR)."""

import pytest

from tests.browser.conftest import SIZES, click_confirmed, needs_chromium
from tests.browser.conftest import login as _login
from tests.browser.test_catalog_in_browser import _fits

pytestmark = [pytest.mark.server, pytest.mark.timeout(300), needs_chromium]


def _submit(page, form):
    with page.expect_navigation():
        form.locator("[data-testid=save]").click()


@pytest.mark.parametrize("size", SIZES)
def test_owner_creates_and_deactivates_a_coupon_and_adds_a_tax_rate(server, browser, owner, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    if size == "phone":
        page.click("[data-nav-toggle]")
    with page.expect_navigation():
        page.click("#site-nav >> text=Catalog")
    with page.expect_navigation():
        page.click("[data-testid=catalog-tabs] >> text=Coupons")
    assert "No coupons yet" in page.locator("[data-testid=empty]").inner_text()
    _fits(page, "the empty coupons list")

    # the form: a percent above 100 is refused beside its field, what was typed is kept
    with page.expect_navigation():
        page.click("[data-testid=new-coupon]")
    form = page.locator("[data-testid=coupon-form]")
    form.locator("input[name=code]").fill("spring25")
    form.locator("input[name=name]").fill("Spring sale")
    form.locator("input[name=percent_off]").fill("125")
    form.locator("select[name=duration]").select_option("repeating")
    form.locator("input[name=duration_in_periods]").fill("3")
    form.locator("input[name=max_redemptions]").fill("50")
    form.locator("label:has-text('Team') input").check()
    _submit(page, form)
    assert "at most 100" in page.locator("[data-testid=error-percent_off]").inner_text()
    assert page.locator("input[name=code]").input_value() == "spring25"
    _fits(page, "the coupon form with an error")
    page.screenshot(path=str(shots / f"coupon-form-error-{size}.png"), full_page=True)
    page.fill("input[name=percent_off]", "25")
    _submit(page, page.locator("[data-testid=coupon-form]"))
    assert "Coupon SPRING25 created: 25% off, for 3 invoices." in page.locator(".messages").inner_text()
    row = page.locator("[data-testid=coupons] tbody tr").first
    assert "0 of 50" in row.inner_text() and "Team" in row.inner_text()
    _fits(page, "the coupons list")
    page.screenshot(path=str(shots / f"coupons-{size}.png"), full_page=True)

    # deactivate: Cancel in the dialog changes nothing; "Yes, continue" deactivates
    with page.expect_navigation():
        page.click("[data-testid=coupons] a:has-text('SPRING25')")
    page.click("[data-testid=deactivate]")
    page.locator("#confirm-dialog").wait_for(state="visible")
    page.screenshot(path=str(shots / f"coupon-deactivate-dialog-{size}.png"))
    page.click("#confirm-dialog button[value=cancel]")
    assert page.locator("[data-status=active]").count() == 1
    click_confirmed(page, "[data-testid=deactivate]")
    assert "Coupon SPRING25 deactivated" in page.locator(".messages").inner_text()
    assert page.locator("[data-status=deactivated]").is_visible()
    _fits(page, "a deactivated coupon")

    # a tax rate
    page.goto(f"{server}/catalog/tax-rates/")
    with page.expect_navigation():
        page.click("[data-testid=new-tax-rate]")
    form = page.locator("[data-testid=tax-rate-form]")
    form.locator("input[name=name]").fill("VAT")
    form.locator("input[name=percent]").fill("19")
    form.locator("input[name=country]").fill("DE")
    form.locator("input[name=inclusive]").check()
    _fits(page, "the tax rate form")
    _submit(page, form)
    assert "Tax rate VAT created: 19% inclusive, DE." in page.locator(".messages").inner_text()
    _fits(page, "the tax rates list")
    page.screenshot(path=str(shots / f"tax-rates-{size}.png"), full_page=True)
    page.close()
