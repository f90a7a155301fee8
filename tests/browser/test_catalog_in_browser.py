"""The catalog editor in a real browser (Debian's chromium driven by Playwright) at 1280 and 390 px
against the web server: the owner opens Catalog from the navigation, creates a tier (the pricing page's
preview refreshes as they type, through htmx), adds a graduated usage price through the tiers
table, quotes it, sees it on /pricing/, and previews a YAML change as a diff before applying it.
Every step is screenshotted to test-artifacts/ (or $SCREENSHOT_DIR); no page is wider than the
window or has a serious axe-core violation."""

from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, needs_chromium
from tests.browser.conftest import login as _login

ROOT = Path(__file__).resolve().parent.parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [pytest.mark.server, pytest.mark.timeout(300), needs_chromium]


def _settled(page):
    """No htmx request in flight (the live preview), so a save is not raced by a late swap. The field
    being edited is blurred first: its change event fires the preview now, not as the save is clicked."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(100)
    page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=15_000)
    page.wait_for_timeout(300)


def _save(page, form, expected):
    """Saves the form (a full page load) and reads the confirmation; if there is none, says what the
    page shows instead (its URL and any form errors), so a failure explains itself."""
    _settled(page)
    with page.expect_navigation():
        form.locator("[data-testid=save]").click()
    page.wait_for_load_state()
    messages = page.locator(".messages")
    if messages.count() == 0:
        errors = page.locator(".errors, [role=alert], [data-testid^=error]").all_inner_texts()
        raise AssertionError(f"no confirmation after saving; at {page.url}; errors: {errors}")
    assert expected in messages.inner_text()


def _fits(page, what):
    """No horizontal scroll, and no serious or critical axe-core violation."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{what} is {width[0]} px wide in a {width[1]} px window"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => v.impact === "serious" || v.impact === "critical")
             .map(v => `${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`)"""
    )
    assert not violations, f"{what}: {violations}"


@pytest.mark.parametrize("size", SIZES)
def test_owner_edits_the_catalog(server, browser, owner, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    if size == "phone":
        page.click("[data-nav-toggle]")
    with page.expect_navigation():
        page.click("#site-nav >> text=Catalog")
    assert page.url.endswith("/catalog/")
    assert page.locator("[data-testid=tier-team]").is_visible()
    _fits(page, "the catalog")
    page.screenshot(path=str(shots / f"catalog-{size}.png"), full_page=True)

    # a new tier: the preview pane shows the pricing page with it as the form is filled in
    with page.expect_navigation():
        page.click("[data-testid=new-tier]")
    form = page.locator("[data-testid=tier-form]")
    form.locator("input[name=code]").fill("scale")
    form.locator("input[name=sort]").fill("25")
    form.locator("input[name=f_concurrent_jobs]").fill("20")
    form.locator("input[name=f_api_requests]").fill("2000/minute")
    form.locator("input[name=name]").fill("Scale")
    page.locator("[data-testid=pricing-preview] [data-tier=scale]").wait_for(timeout=10_000)
    assert "+- code: scale" in page.locator("[data-testid=diff]").inner_text()
    _fits(page, "the tier form")
    page.screenshot(path=str(shots / f"catalog-tier-form-{size}.png"), full_page=True)
    _save(page, form, "Tier created")

    # a graduated usage price through the tiers table
    with page.expect_navigation():
        page.click("[data-testid=add-price-scale]")
    form = page.locator("[data-testid=price-form]")
    form.locator("input[name=code]").fill("scale-minutes")
    form.locator("select[name=model]").select_option("graduated")
    form.locator("select[name=meter]").select_option("build-minutes")
    form.locator("input[name=row0_up_to]").fill("1000")
    form.locator("input[name=row0_unit]").fill("0")
    form.locator("input[name=row1_unit]").fill("0.008")
    form.locator("input[name=row1_flat]").fill("5")
    page.locator("[data-testid=pricing-preview] [data-tier=scale] .price").wait_for(timeout=10_000)
    _fits(page, "the price form")
    page.screenshot(path=str(shots / f"catalog-price-form-{size}.png"), full_page=True)
    _save(page, form, "Price added")
    price = page.locator("[data-testid=price-scale-minutes]")
    assert "graduated" in price.inner_text() and "build-minutes" in price.inner_text()

    # an immutability violation: the code is taken; the form says so and nothing is added
    with page.expect_navigation():
        page.click("[data-testid=add-price-scale]")
    form = page.locator("[data-testid=price-form]")
    form.locator("input[name=code]").fill("scale-minutes")
    form.locator("input[name=amount]").fill("10")
    _settled(page)
    with page.expect_navigation():
        form.locator("[data-testid=save]").click()
    assert "duplicate price code" in page.locator("[data-testid=error-code]").inner_text()
    _fits(page, "the price form with an error")
    page.screenshot(path=str(shots / f"catalog-price-error-{size}.png"), full_page=True)

    # its quote calculator (htmx refreshes the result as the quantity changes)
    page.goto(f"{server}/catalog/")
    with page.expect_navigation():
        price.locator("text=Quote").click()
    page.fill("input[name=quantity]", "3000")
    page.locator("[data-testid=quote-amount]").wait_for(timeout=10_000)
    assert page.locator("[data-testid=quote-amount]").inner_text() == "$21.00"
    _fits(page, "the quote calculator")
    page.screenshot(path=str(shots / f"catalog-quote-{size}.png"), full_page=True)

    page.goto(f"{server}/pricing/")
    assert page.locator("[data-tier=scale]").is_visible()

    # YAML: the export, changed and pasted, shows its diff; applied only when confirmed
    yaml_text = page.evaluate("() => fetch('/catalog/export.yaml').then(r => r.text())")
    page.goto(f"{server}/catalog/import/")
    page.fill("textarea[name=text]", yaml_text.replace("name: Scale\n", "name: Scale Up\n"))
    with page.expect_navigation():
        page.click("[data-testid=preview-import]")
    assert "+  name: Scale Up" in page.locator("[data-testid=diff]").inner_text()
    _fits(page, "the import preview")
    page.screenshot(path=str(shots / f"catalog-import-preview-{size}.png"), full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=apply]")
    assert "Catalog imported" in page.locator(".messages").inner_text()
    assert "Scale Up" in page.locator("[data-testid=tier-scale]").inner_text()

    # a bad file: the error with its line and path, the line marked
    page.goto(f"{server}/catalog/import/")
    page.fill("textarea[name=text]", yaml_text.replace("concurrent_jobs: 3", "concurrent_jobs: lots"))
    with page.expect_navigation():
        page.click("[data-testid=preview-import]")
    error = page.locator("[data-testid=import-error]").inner_text()
    assert (
        "features.concurrent_jobs" in error and "lots" in page.locator("[data-testid=bad-line]").inner_text()
    )
    _fits(page, "the import error")
    page.screenshot(path=str(shots / f"catalog-import-error-{size}.png"), full_page=True)
    page.close()
