"""Issue 12's whole story in a real browser (Debian's chromium driven by Playwright) against the web server
and a Celery worker on committed data: a creator sets up payouts through the sandbox and publishes
two tiers through the dashboard's form (390 px), a fan finds them on the creator's channel page,
joins one (1280 px) and tips a video (390 px) through the sandbox's hosted checkout, the creator
sees the earnings pending, then (the sandbox clock a week on) available net of the recorded
fee, pays them out once with a click, a refund takes the creator's share back, and the revenue
report shows what was deferred and recognized."""

import datetime as dt
import re
import time

import httpx
import pytest

from tests.browser.conftest import accessible, click_confirmed, needs_chromium
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.worker, pytest.mark.server, pytest.mark.timeout(420), needs_chromium]


def _until(page, url, pattern, seconds=40):
    """Reload until the page shows `pattern` (the worker applies webhooks asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if re.search(pattern, page.content()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} never appeared on {url}")
        time.sleep(0.5)


def _balance(api, currency="usd") -> dict:
    body = api.get("/api/v1/creators/ann").json()
    return next((b for b in body["balance"] if b["currency"] == currency), {})


def _pay(page, back):
    """Pay on the sandbox's hosted checkout the page is on; back where the checkout returns to."""
    assert "/sandbox/checkout/" in page.url, page.url
    page.fill("input[name=card]", "4242 4242 4242 4242")
    with page.expect_navigation(url=back):
        page.click("button[type=submit]")


def _publish(page, server, name, monthly):
    """The creator publishes a tier through the dashboard's form."""
    page.goto(f"{server}/creator/")
    with page.expect_navigation():
        page.click("[data-testid=tiers] >> text=New tier")
    page.fill("[name=name]", name)
    page.fill("[name=monthly]", monthly)
    with page.expect_navigation():
        page.click("[data-testid=save]")
    assert f"{name} is published" in page.locator(".messages").inner_text()


def test_a_creators_money_from_the_first_tip_to_the_payout(live_tenant, server, worker, browser, shots):
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.memberships.services import customer_for_user
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="ann@live.test", password=PASSWORD, role=Role.CREATOR)
            fan = user_create(email="fan1@fan.test", password=PASSWORD, role=Role.CUSTOMER)
            return customer_for_user(user=fan).external_id

    fan_id = committed(seed)
    # the test's own HTTP client reaches the web server by address (the browser resolves the tenant's host)
    local = re.sub(r"//[^:/]+", "//127.0.0.1", server)
    api = httpx.Client(
        base_url=local, timeout=30,
        headers={"Authorization": f"Bearer {live_tenant.api_key}", "Host": server.split("//", 1)[1]},
    )  # fmt: skip

    # the creator logs in and sets up payouts through the sandbox's onboarding page
    creator = browser.new_page(viewport={"width": 390, "height": 844})
    creator.goto(f"{server}/accounts/login/")
    creator.fill("input[name=login]", "ann@live.test")
    creator.fill("input[name=password]", PASSWORD)
    with creator.expect_navigation():
        creator.click("button[type=submit]")
    creator.goto(f"{server}/creator/")
    assert "No earnings yet" in creator.content()
    with creator.expect_navigation(url="**/sandbox/connect/**"):
        creator.click("text=Set up payouts")
    with creator.expect_navigation(url="**/creator/"):
        creator.click("button[type=submit]")
    assert creator.inner_text("[data-testid=payout-status]") == "Active"

    # the creator publishes two tiers through the dashboard's form (her handle comes from her email)
    _publish(creator, server, "Gold", "5")
    _publish(creator, server, "Silver", "15.00")
    accessible(creator, "the creator dashboard with two tiers")
    creator.screenshot(path=str(shots / "creator-journey-tiers-phone.png"), full_page=True)
    listed = httpx.get(f"{local}/api/v1/channels/ann/tiers", headers={"Host": live_tenant.host}).json()[
        "results"
    ]
    assert [t["name"] for t in listed] == ["Gold", "Silver"]

    # a fan finds Gold on ann's channel page (1280 px) and joins it on the sandbox's hosted checkout
    fan = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(fan, server, "fan1@fan.test")
    fan.goto(f"{server}/channels/ann/")
    assert [fan.locator(".tier h3").nth(i).inner_text() for i in range(2)] == ["Gold", "Silver"]
    assert "$5.00 / month" in fan.locator("article[data-tier=ann-gold]").inner_text()
    accessible(fan, "the channel page at 1280 px")
    fan.screenshot(path=str(shots / "creator-journey-channel-desktop.png"), full_page=True)
    with fan.expect_navigation(url="**/sandbox/checkout/**"):
        fan.click("article[data-tier=ann-gold] >> text=Join Gold")
    _pay(fan, "**/account/supporting/?checkout=done")
    assert "Thank you! Your membership shows here" in fan.locator(".messages").inner_text()

    # and tips a video from the channel page on a phone (390 px): the item comes with the link
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    _login(phone, server, "fan1@fan.test")
    phone.goto(f"{server}/channels/ann/?item=video-42")
    assert "for video-42" in phone.locator("[data-testid=tip]").inner_text()
    phone.fill("[data-testid=tip] [name=amount]", "20000")  # above the site's $500.00
    with phone.expect_navigation():
        phone.click("[data-testid=send-tip]")
    assert "A tip is between $1.00 and $500.00." in phone.locator("[data-testid=error-amount]").inner_text()
    accessible(phone, "the channel page at 390 px with a tip error")
    phone.screenshot(path=str(shots / "creator-journey-channel-phone.png"), full_page=True)
    phone.fill("[data-testid=tip] [name=amount]", "10")
    with phone.expect_navigation(url="**/sandbox/checkout/**"):
        phone.click("[data-testid=send-tip]")
    _pay(phone, "**/account/supporting/?tipped=ann")
    assert "Thank you for your tip!" in phone.locator(".messages").inner_text()

    # pending: 500 + 1000 gross, 10 % platform fee, the sandbox keeps no fee by default
    _until(creator, f"{server}/creator/", r"video-42")
    deadline = time.monotonic() + 40
    while _balance(api).get("pending") != 1350 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _balance(api) == {
        "currency": "usd",
        "pending": 1350,
        "available": 0,
        "paid_out": 0,
        "lifetime": 1350,
    }

    # a week on the sandbox clock: the hold (7 days) is over
    committed(lambda: call_command("sandbox_advance", "--tenant", live_tenant.tenant.slug, "--days", "8"))
    _until(creator, f"{server}/creator/", r"Pay out \$13\.50")
    click_confirmed(creator, "text=Pay out $13.50")
    assert "Payout of $13.50 requested" in creator.content()
    _until(creator, f"{server}/creator/", r'data-status="paid"')
    payouts = api.get("/api/v1/creators/ann/payouts").json()["results"]
    assert [(p["amount"], p["status"]) for p in payouts] == [(1350, "paid")]

    # the fan's Gold invoice refunded in full: the creator's 450 share is taken back from available
    invoices = api.get(f"/api/v1/customers/{fan_id}/invoices").json()["results"]
    gold = next(i for i in invoices if i["total"] == 500)
    refunded = api.post(f"/api/v1/invoices/{gold['id']}/credit-notes", json={"amount": 500, "refund": True},
                        headers={"Idempotency-Key": "refund-gold"})  # fmt: skip
    assert refunded.status_code == 201, refunded.text
    deadline = time.monotonic() + 40
    while _balance(api).get("available") != -450 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _balance(api) == {
        "currency": "usd",
        "pending": 0,
        "available": -450,
        "paid_out": 1350,
        "lifetime": 900,
    }

    # the revenue report: what was billed, collected, deferred and recognized
    today = dt.date.today()
    report = api.get("/api/v1/reports/revenue", params={"from": str(today - dt.timedelta(days=1)),
                                                        "to": str(today + dt.timedelta(days=40))})  # fmt: skip
    assert report.status_code == 200, report.text
    rows = (
        report.json()["results"]
        if isinstance(report.json(), dict) and "results" in report.json()
        else report.json()
    )
    assert rows, report.text
    creator.screenshot(path=str(shots / "creator-journey-phone.png"), full_page=True)

    # the fan's supporting page lists the membership and the tip, each linking ann's channel
    _until(phone, f"{server}/account/supporting/", r"video-42")
    assert "Gold" in phone.locator("[data-testid=memberships]").inner_text()
    assert phone.locator("[data-testid=memberships] a[href='/channels/ann/']").count() == 1
    accessible(phone, "the fan's supporting page at 390 px")
    phone.screenshot(path=str(shots / "creator-journey-supporting-phone.png"), full_page=True)
