"""The owner's overview in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px, against the web server on committed data: the figures, a chart per figure, the range presets and
a custom range, the invoice needing attention one click away, no horizontal scroll; a new tenant's
empty states. Screenshots go to test-artifacts/ (or $SCREENSHOT_DIR)."""

from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.server, pytest.mark.timeout(240), needs_chromium]


def _owner(live_tenant, email):
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.helpers import committed

    def make():
        with tenant_context(live_tenant.tenant):
            user_create(email=email, password=PASSWORD, role=Role.OWNER)

    committed(make)


@pytest.fixture
def busy(live_tenant):
    from tests.console.test_overview import seed_overview
    from tests.helpers import committed

    invoices = committed(lambda: seed_overview(live_tenant.tenant))
    _owner(live_tenant, "owner@overview.test")
    return invoices


@pytest.mark.parametrize("size", SIZES)
def test_owner_reads_the_overview(server, browser, busy, shots, size):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@overview.test")
    page.goto(f"{server}/dashboard/?range=7d")
    assert page.locator("#fig-mrr").is_visible()
    text = page.locator("main").inner_text()
    assert "$135.83" in text and "€30.00" in text
    charts = page.locator("[data-testid=chart] canvas")
    assert charts.count() >= 7  # a chart per figure (MRR and net revenue: one per currency)
    page.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length >= 7")
    _fits(page, "the overview")
    page.screenshot(path=str(shots / f"overview-{size}.png"), full_page=True)

    page.goto(f"{server}/dashboard/?range=30d")
    with page.expect_navigation():
        page.click(f"a[href='/invoices/{busy['due'].pk}/']")
    assert page.url.endswith(f"/invoices/{busy['due'].pk}/")


@pytest.mark.parametrize("size", SIZES)
def test_a_new_tenant_sees_what_to_do(server, browser, live_tenant, shots, size):
    _owner(live_tenant, "new-owner@overview.test")
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "new-owner@overview.test")
    page.goto(f"{server}/dashboard/")
    assert page.locator("text=No paying subscriptions yet").is_visible()
    _fits(page, "the empty overview")
    page.screenshot(path=str(shots / f"overview-empty-{size}.png"), full_page=True)
