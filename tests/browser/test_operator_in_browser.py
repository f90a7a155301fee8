"""The operator's console in a real browser (Debian's chromium driven by Playwright) against
the web server: the operator logs in on the bare host, creates a tenant (a form error first), finds it
answering at its own host, suspends it (its site answers 403), resumes it, at 1280 and 390 px with
no horizontal scroll."""

import os
import time
from pathlib import Path

import pytest

from tests.browser.conftest import click_confirmed, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.server, pytest.mark.timeout(300), needs_chromium]


@pytest.mark.parametrize("size", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_the_operator_creates_suspends_and_resumes_a_tenant(live_tenant, web_port, browser, size):
    import secrets

    from accounts.models import User
    from tenants.models import Tenant
    from tenants.services import tenant_delete
    from tests.helpers import committed

    email = f"root-{secrets.token_hex(3)}@operator.test"
    committed(lambda: User.objects.create_superuser(email=email, password=PASSWORD))
    slug = f"op-{secrets.token_hex(3)}"
    shots = Path(os.environ.get("SCREENSHOT_DIR") or "test-artifacts")
    shots.mkdir(parents=True, exist_ok=True)
    console = f"http://localhost:{web_port}"
    page = browser.new_page(viewport=size)
    try:
        page.goto(f"{console}/")
        with page.expect_navigation():
            page.click("text=Log in as the operator")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation(url=f"{console}/"):
            page.click("input[type=submit]")
        assert "Create a tenant" in page.content()
        _fits(page, "the console")

        page.fill("input[name=slug]", "Bad Slug")
        page.fill("input[name=name]", "Op Co")
        with page.expect_navigation():
            page.click("text=Create tenant")
        assert "Slug must be 3-40 characters" in page.content()

        page.fill("input[name=slug]", slug)
        with page.expect_navigation():
            page.click("text=Create tenant")
        assert f"Created Op Co: it answers at {slug}." in page.content()
        page.screenshot(path=str(shots / f"operator-{size['width']}.png"), full_page=True)
        _fits(page, "the console with a new tenant")
        host = page.locator(f"tr[data-tenant='{slug}'] td[data-label=Site] a").first.inner_text()
        site = browser.new_page(viewport=size)
        site.goto(f"http://{host}:{web_port}/pricing/")
        assert site.title().endswith("Op Co")

        click_confirmed(page, f"tr[data-tenant='{slug}'] >> text=Suspend")
        assert "is suspended" in page.content()
        # every web worker sees it once its host lookup expires (TENANT_CACHE_SECONDS, 10 s)
        deadline = time.monotonic() + 20
        while site.goto(f"http://{host}:{web_port}/pricing/").status != 403:
            assert time.monotonic() < deadline, "the suspended tenant's site still answers"
            time.sleep(0.5)
        assert "This site is not available" in site.content()
        with page.expect_navigation():
            page.click(f"tr[data-tenant='{slug}'] >> text=Resume")
        assert "is live again" in page.content()
    finally:
        tenant = committed(lambda: Tenant.objects.filter(slug=slug).first())
        if tenant is not None:
            committed(lambda: tenant_delete(tenant=tenant))
