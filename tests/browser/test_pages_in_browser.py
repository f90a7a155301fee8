"""Every page, as every persona, in a real browser (Debian's chromium via Playwright) at 390 px and
1280 px: no horizontal scroll, no serious or critical axe-core violation (axe-core from npm,
node_modules/axe-core), the layout's navigation for that persona, charts drawn by Chart.js.
Screenshots go to test-artifacts/pages/ (or $SCREENSHOT_DIR)."""

import datetime as dt
import os
import secrets
from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.conftest import needs_chromium
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
pytestmark = [pytest.mark.server, pytest.mark.timeout(600), needs_chromium]

# persona → (login email or None, pages, nav labels it must see, labels it must not see)
PERSONAS = {
    "anonymous": (None, ["/", "/pricing/", "/accounts/login/", "/accounts/signup/"],
                  ["Pricing", "Log in"], ["Invoices", "Usage"]),
    "customer": ("buyer@live.test", ["/account/plan/", "/account/billing/", "/pricing/", "/usage/"],
                 ["Plan & usage", "Billing"], ["Invoices", "Usage", "Developers", "Customers"]),
    "creator": ("creator@live.test", ["/dashboard/", "/account/plan/", "/pricing/"],
                ["Overview", "Plan & usage"], ["Invoices", "Developers"]),
    "finance": ("finance@live.test", ["/dashboard/", "/customers/", "/invoices/", "/reconciliation/", "/developers/"],
                ["Overview", "Customers", "Invoices", "Reconciliation"], ["Developers", "Settings"]),
    "support": ("support@live.test", ["/dashboard/", "/customers/", "/usage/", "/usage/ai/", "/developers/",
                                      "/developers/keys/", "/developers/webhooks/", "/developers/inbox/", "/settings/"],
                ["Overview", "Invoices", "Usage", "Developers"], ["Settings"]),
    "owner": ("owner@live.test", ["/dashboard/", "/customers/", "/customers/{buyer}/", "/invoices/", "/usage/",
                                  "/usage/ai/", "/usage/?window=hour", "/reconciliation/", "/developers/",
                                  "/developers/keys/", "/developers/webhooks/", "/developers/inbox/", "/settings/",
                                  "/pricing/", "/creators/", "/creators/payouts/?sort=-amount", "/catalog/coupons/",
                                  "/catalog/coupons/new/", "/catalog/coupons/TEAM20/", "/catalog/coupons/new/?invalid",
                                  "/catalog/tax-rates/", "/catalog/tax-rates/new/", "/catalog/tax-rates/{tax_rate}/"],
              ["Overview", "Customers", "Invoices", "Usage", "Catalog", "Developers", "Settings"], []),
}  # fmt: skip


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-artifacts") / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def people(live_tenant):
    """Staff, a creator and a customer with build minutes on three days of this period; coupons and
    tax rates. The ids pages need ({buyer}, {tax_rate})."""
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.discounts.services import coupon_create
    from billing.invoicing.taxes import tax_rate_create
    from billing.ledger.creators.models import Creator, Payout
    from billing.memberships.services import customer_discount_apply, customer_for_user
    from billing.metering.ingest import events_ingest
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="owner@live.test", password=PASSWORD, role=Role.OWNER)
            user_create(email="support@live.test", password=PASSWORD, role=Role.SUPPORT)
            user_create(email="finance@live.test", password=PASSWORD, role=Role.FINANCE)
            user_create(email="creator@live.test", password=PASSWORD, role=Role.CREATOR)
            buyer = customer_for_user(user=user_create(email="buyer@live.test", password=PASSWORD))
            now = timezone.now()
            events_ingest(
                events=[{"id": f"m{i}", "customer": buyer.external_id, "type": "build.finished",
                         "timestamp": (now - dt.timedelta(hours=1 + 20 * i)).isoformat(),
                         "properties": {"minutes": 1200 + 700 * i}} for i in range(3)]
            )  # fmt: skip
            # two sellers with a payout each (the staff's sorted creator and payout lists)
            for handle, name, amount in (("ann", "Ann Archer", 9_000), ("bob-builds", "Bob Builder", 12_500)):
                creator = Creator.objects.create(
                    handle=handle, display_name=name, email=f"{handle}@live.test"
                )
                Payout.objects.create(creator=creator, amount=amount, currency="usd", provider="sandbox",
                                      account_id=f"acct_{handle}", status="paid", provider_payout_id=f"po_{handle}_1")  # fmt: skip
            coupon_create(code="TEAM20", name="Team launch offer", percent_off=Decimal(20), duration="repeating",
                          duration_in_periods=3, max_redemptions=100, tier_codes=["team", "pro"],
                          expires_at=now + dt.timedelta(days=30))  # fmt: skip
            coupon_create(code="WELCOME5", amount_off=500, currency="usd", duration="once")
            customer_discount_apply(customer=buyer, coupon_code="TEAM20")
            rate = tax_rate_create(name="VAT", percent=Decimal(19), inclusive=True, country="DE")
            tax_rate_create(name="Sales tax", percent=Decimal("8.875"))
            return {"buyer": buyer.external_id, "tax_rate": rate.pk}

    return committed(seed)


@pytest.fixture
def operator(django_db_blocker):
    """A superuser on the public schema (the operator's console), removed afterwards."""
    from accounts.models import User
    from tests.helpers import committed

    email = f"root-{secrets.token_hex(3)}@operator.test"
    with django_db_blocker.unblock():
        committed(lambda: User.objects.create_superuser(email=email, password=PASSWORD))
        try:
            yield email
        finally:
            # raw: the ORM's cascade would look for tenant-only tables in the public schema
            committed(lambda: User.objects.filter(email=email)._raw_delete(User.objects.db))


def _login(page, server, email):
    page.goto(f"{server}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")


def _check(page, url, name, shots, problems):
    """Visit `url`: record a horizontal scroll or serious axe violations in `problems`; screenshot."""
    page.goto(url)
    _inspect(page, name, shots, problems)


def _check_refused(page, url, name, shots, problems):
    """The coupon form at `url` sent with hostile values: the refusal (errors beside the fields) is
    checked like any other page."""
    page.goto(url)
    page.fill("input[name=code]", "two words")
    page.fill("input[name=percent_off]", "150")
    page.fill("input[name=max_redemptions]", "-1")
    with page.expect_navigation():
        page.click("[data-testid=save]")
    if page.locator("[data-testid^=error-]").count() < 2:
        problems.append(f"{name}: the form errors are not shown beside their fields")
    _inspect(page, name, shots, problems)


def _inspect(page, name, shots, problems):
    page.wait_for_load_state("networkidle")
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"{name}: {width[0]} px wide in a {width[1]} px window")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => v.impact === "serious" || v.impact === "critical")
             .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`)"""
    )
    problems.extend(f"{name}: {v}" for v in violations)
    for canvas in page.locator("canvas[data-chart]").all():
        if canvas.get_attribute("data-drawn") != "1":
            problems.append(f"{name}: a chart was not drawn")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def _slug(path):
    return path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "home"


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_as_every_persona(browser, server, people, shots, size):
    assert AXE.exists(), "node_modules/axe-core is missing: run `make install` (npm ci)"
    problems = []
    for persona, (email, paths, seen, unseen) in PERSONAS.items():
        context = browser.new_context(viewport=SIZES[size])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        if email:
            _login(page, server, email)
        for path in paths:
            path = path.format(**people)
            if path.endswith("?invalid"):  # the form as a refusal shows it: errors beside the fields
                _check_refused(
                    page, f"{server}{path.split('?')[0]}", f"{persona}-{_slug(path)}-{size}", shots, problems
                )
                continue
            _check(page, f"{server}{path}", f"{persona}-{_slug(path)}-{size}", shots, problems)
        page.goto(f"{server}{paths[0]}")  # the last page may be a 403 (no navigation there)
        nav = page.locator("#site-nav")
        if size == "phone":
            assert not nav.is_visible(), "the navigation is folded away on a phone"
            page.click("[data-nav-toggle]")
            page.screenshot(path=str(shots / f"{persona}-menu-{size}.png"), full_page=True)
        labels = [text.strip() for text in nav.locator(".nav-links a").all_inner_texts()]
        for label in seen:
            assert label in labels or label in nav.inner_text(), f"{persona} misses {label} in {labels}"
        for label in unseen:
            assert label not in labels, f"{persona} sees {label}"
        assert not errors, f"{persona}: script errors {errors}"
        context.close()
    assert not problems, "\n".join(problems)


def test_usage_chart_is_drawn_with_readable_labels_and_the_empty_state(browser, server, people, shots):
    page = browser.new_page(viewport=SIZES["desktop"])
    _login(page, server, "owner@live.test")
    page.goto(f"{server}/usage/?meter=build-minutes")
    page.wait_for_function("() => document.querySelector('canvas[data-chart]')?.dataset.drawn === '1'")
    labels = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas[data-chart]'));"
        " return c.scales.x.ticks.map(t => t.label); }"
    )
    assert labels and all(":" not in label and "-" not in label for label in labels)  # "Dec 1", not ISO
    tooltip = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas[data-chart]'));"
        " const cb = c.options.plugins.tooltip.callbacks;"
        " const i = c.data.datasets[0].data.findIndex(v => v > 0);"
        " return cb.label.call(c.tooltip, {parsed: {y: c.data.datasets[0].data[i]}, dataset: c.data.datasets[0]}); }"
    )
    assert tooltip.endswith("minutes") and "," in tooltip  # "2,600 minutes"
    page.screenshot(path=str(shots / "owner-usage-chart-desktop.png"))
    page.goto(f"{server}/usage/ai/")
    assert page.locator("[data-testid=chart-empty]").inner_text().startswith("No data yet")


def test_operator_console_and_error_pages(browser, server, people, operator, shots, web_port):
    problems = []
    for size in SIZES:
        page = browser.new_page(viewport=SIZES[size])
        public = f"http://localhost:{web_port}"
        _check(page, f"{public}/", f"operator-anonymous-{size}", shots, problems)
        page.goto(f"{public}/admin/login/")
        page.fill("input[name=username]", operator)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("input[type=submit]")
        _check(page, f"{public}/", f"operator-console-{size}", shots, problems)
        assert "Tenants" in page.locator("#site-nav").inner_text()
        _login(page, server, "buyer@live.test")
        response = page.goto(f"{server}/invoices/")
        assert response.status == 403 and "You may not open this page" in page.content()
        _check(page, f"{server}/invoices/", f"error-403-{size}", shots, problems)
        _check(page, f"{server}/no-such-page/", f"error-404-{size}", shots, problems)
        page.close()
    assert not problems, "\n".join(problems)
