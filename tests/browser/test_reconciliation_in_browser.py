"""The reconciliation pages in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px against the web server on committed data: the owner finds the runs from the top bar, filters them,
opens a day with differences (long provider ids included), picks a kind and compares the day again.
Each step is screenshotted (to $SCREENSHOT_DIR, else the test's tmp dir) and no page may be wider
than the window."""

import datetime as dt

import pytest

from tests.browser.conftest import SIZES, needs_chromium
from tests.browser.conftest import fits as _fits
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.server, pytest.mark.timeout(240), needs_chromium]


@pytest.fixture
def reconciled(live_tenant):
    """An owner; a balanced sandbox day and a Stripe day with one difference of each kind."""
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.ledger.reconciliation.models import ReconciliationItem, ReconciliationRun
    from billing.ledger.reconciliation.services import day_window
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="owner@live.test", password=PASSWORD, role=Role.OWNER)
            day = dt.date(2026, 11, 30)
            start, end = day_window(day)
            ReconciliationRun.objects.create(
                provider="sandbox", day=day, window_start=start, window_end=end, status="balanced",
                provider_count=12, ledger_count=12, matched_count=12, finished_at=end,
            )  # fmt: skip
            run = ReconciliationRun.objects.create(
                provider="stripe", day=day, window_start=start, window_end=end, status="differences",
                provider_count=40, ledger_count=39, matched_count=36, difference_count=4, finished_at=end,
            )  # fmt: skip
            long_id = "ch_3PgX7qB7WZ01zgkW1aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
            ReconciliationItem.objects.bulk_create(
                [
                    ReconciliationItem(run=run, kind="missing_in_ledger", provider_ref=long_id,
                                       provider_entry="txn_3PgX7qB7WZ01zgkW0aBcDeFgHiJkLmNo", currency="usd",
                                       provider_amount=129_900, provider_fee=3_797, occurred_at=start,
                                       details={"reason": "no payment of ours names it"}),
                    ReconciliationItem(run=run, kind="missing_at_provider", provider_ref="in_1PgX7qB7WZ01zgkWNy0Cn5nw",
                                       currency="usd", our_amount=4_900, our_fee=172, ledger_amount=4_728,
                                       occurred_at=start),
                    ReconciliationItem(run=run, kind="amount_mismatch", provider_ref="re_3PgX7qB7WZ01zgkW1xYzAbCd",
                                       currency="usd", provider_amount=-1_500, our_amount=-1_000,
                                       ledger_amount=-1_000, occurred_at=start, details={"reason": "amount"}),
                    ReconciliationItem(run=run, kind="fee_mismatch", provider_ref="ch_3PgX7qB7WZ01zgkW2QrStUv",
                                       currency="usd", provider_amount=2_900, provider_fee=114, our_amount=2_900,
                                       our_fee=84, ledger_amount=2_816, occurred_at=start, details={"reason": "fee"}),
                ]
            )  # fmt: skip
            return run.pk

    return committed(seed)


@pytest.mark.parametrize("size", SIZES)
def test_the_owner_reads_runs_and_differences_and_compares_a_day_again(
    server, browser, reconciled, shots, size
):
    page = browser.new_page(viewport=SIZES[size])
    _login(page, server, "owner@live.test")
    page.goto(f"{server}/reconciliation/")
    assert page.locator("[data-run]").count() == 2
    assert page.locator('[data-testid=latest] [data-provider="stripe"]').inner_text().count("4") >= 1
    _fits(page, "the run list")
    page.screenshot(path=str(shots / f"reconciliation-list-{size}.png"), full_page=True)

    page.select_option("select[name=status]", "balanced")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator("[data-run]").count() == 1
    _fits(page, "the filtered list")

    page.goto(f"{server}/reconciliation/{reconciled}/")
    assert page.locator("[data-item]").count() == 4
    assert "$1,299.00" in page.locator("[data-testid=differences]").inner_text()
    _fits(page, "a run with differences")
    page.screenshot(path=str(shots / f"reconciliation-run-{size}.png"), full_page=True)

    with page.expect_navigation():
        page.click("nav.tabs a[data-kind=fee_mismatch]")
    assert page.locator("[data-item]").count() == 1
    _fits(page, "one kind of differences")

    # Stripe is not configured on this tenant: comparing again says so
    with page.expect_navigation():
        page.click("text=Compare again")
    assert "Not compared: No stripe account is configured" in page.locator(".messages").inner_text()
    _fits(page, "the run after comparing again")
    page.screenshot(path=str(shots / f"reconciliation-again-{size}.png"), full_page=True)
