"""What every real-browser test shares: Debian's chromium (never a downloaded browser) driven by
Playwright, headless, every host name resolved to this machine."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--host-resolver-rules=MAP * 127.0.0.1"]  # fmt: skip
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) or shutil.which("chromium") is None, reason="needs Debian's chromium"
)


def launch(playwright, args=ARGS):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)


@pytest.fixture
def server(live_tenant, gunicorn):
    """The live tenant's site under gunicorn."""
    return f"http://{live_tenant.host}:{gunicorn}"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    return browser.new_page()


def click_confirmed(page, selector: str) -> None:
    """Click a destructive action and accept the layout's confirmation <dialog> (data-confirm)."""
    with page.expect_navigation():
        page.click(selector)
        page.locator("#confirm-dialog").wait_for(state="visible")
        page.click("#confirm-dialog button[value=confirm]")
