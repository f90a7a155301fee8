"""Issue 12's whole story in a real browser (Debian's chromium driven by Playwright) against gunicorn
and a Celery worker on committed data: a creator sets up payouts through the sandbox, the integrator
publishes two tiers, a fan joins one and tips a video through the sandbox's hosted checkout, the
creator sees the earnings pending, then (the sandbox clock a week on) available net of the recorded
fee, pays them out once with a click, a refund takes the creator's share back, and the revenue
report shows what was deferred and recognized."""

import datetime as dt
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import click_confirmed, needs_chromium
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


def _pay(page, url):
    page.goto(url)
    page.fill("input[name=card]", "4242 4242 4242 4242")
    with page.expect_navigation(url="**/pricing/?thanks=1"):
        page.click("button[type=submit]")


def test_a_creators_money_from_the_first_tip_to_the_payout(live_tenant, server, worker, browser):
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email="ann@live.test", password=PASSWORD, role=Role.CREATOR)

    committed(seed)
    URLS = {"success_url": f"{server}/pricing/?thanks=1", "cancel_url": f"{server}/pricing/"}  # noqa: N806
    # the test's own HTTP client reaches gunicorn by address (the browser resolves the tenant's host)
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

    # the integrator publishes two tiers for ann (a handle taken from the creator's email)
    for code, amount in (("gold", 500), ("silver", 1500)):
        made = api.post("/api/v1/creators/ann/tiers", json={"code": code, "name": code.title(), "amount": amount,
                                                            "currency": "usd"}, headers={"Idempotency-Key": f"tier-{code}"})  # fmt: skip
        assert made.status_code == 201, made.text
    listed = httpx.get(f"{local}/api/v1/channels/ann/tiers", headers={"Host": live_tenant.host}).json()[
        "results"
    ]
    assert [t["name"] for t in listed] == ["Gold", "Silver"]

    # a fan joins Gold and tips a video, paying on the sandbox's hosted checkout
    assert (
        api.post("/api/v1/customers", json={"external_id": "fan1", "email": "fan1@fan.test"}).status_code
        == 201
    )
    joined = api.post("/api/v1/checkouts", json={"customer": "fan1", "tier": listed[0]["code"], **URLS})
    assert joined.status_code == 201, joined.text
    fan = browser.new_page(viewport={"width": 1280, "height": 900})
    _pay(fan, joined.json()["url"])
    tipped = api.post("/api/v1/tips/checkouts", json={"creator": "ann", "customer": "fan1", "amount": 1000,
                                                      "currency": "usd", "item_id": "video-42", **URLS})  # fmt: skip
    assert tipped.status_code == 201, tipped.text
    _pay(fan, tipped.json()["url"])

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
    invoices = api.get("/api/v1/customers/fan1/invoices").json()["results"]
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
    Path("test-artifacts").mkdir(exist_ok=True)
    creator.screenshot(path="test-artifacts/creator-journey-phone.png", full_page=True)
