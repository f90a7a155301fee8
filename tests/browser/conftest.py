"""What every real-browser test shares: Debian's chromium (never a downloaded browser) driven by
Playwright, headless, every host name resolved to this machine."""

import os
import shutil
from pathlib import Path

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
def web_port(granian):
    """The port of the app as the Procfile serves it (scripts/web.sh: Granian): what a user's
    browser talks to under `make run`."""
    return granian[0]


@pytest.fixture
def server(live_tenant, web_port):
    """The live tenant's site, served as `make run` serves it."""
    return f"http://{live_tenant.host}:{web_port}"


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


# --- what the page tests share ----------------------------------------------------------------------

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def shots() -> Path:
    """Where screenshots go: SCREENSHOT_DIR, else test-artifacts/ at the repository's root (gitignored)."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(page, server, email):
    """Log in through the site's own form."""
    from tests.conftest import PASSWORD

    page.goto(f"{server}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def fits(page, what):
    """No horizontal scroll: the document is no wider than the window."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{what} is {width[0]} px wide in a {width[1]} px window"


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def accessible(page, what):
    """No horizontal scroll, and no serious or critical axe-core violation (axe-core from npm)."""
    fits(page, what)
    assert AXE.exists(), "node_modules/axe-core is missing: run `make install` (npm ci)"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => v.impact === "serious" || v.impact === "critical")
             .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`)"""
    )
    assert violations == [], f"{what}: {violations}"


@pytest.fixture
def owner(live_tenant):
    """owner@live.test, an owner of the live tenant (PASSWORD)."""
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.conftest import PASSWORD
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="owner@live.test", password=PASSWORD, role=Role.OWNER)

    committed(seed)
