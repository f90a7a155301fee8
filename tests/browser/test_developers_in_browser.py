"""The Developers page in a real browser (Debian's chromium driven by Playwright) at 1280 px and
390 px, against the web server on committed data: the home's figures, a webhook endpoint's delivery log
and a resend, the inbox filtered to dead events and a replay, the explorer, a new key shown once;
no horizontal scroll and no serious axe-core violation anywhere. Screenshots go to test-artifacts/ (or $SCREENSHOT_DIR)."""

import datetime as dt
import time
from pathlib import Path

import pytest

from tests.browser.conftest import SIZES, click_confirmed, needs_chromium
from tests.browser.conftest import login as _login
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [pytest.mark.server, pytest.mark.timeout(300), needs_chromium]
OWNER = "owner@developers.test"


@pytest.fixture
def seeded(live_tenant):
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.events.models import Delivery, DeliveryAttempt, DeliveryStatus
    from billing.events.services import endpoint_create, event_publish
    from billing.inbox.models import InboxEvent, InboxStatus
    from billing.metering.ingest import events_ingest
    from kernel.requestlog import request_log_append, request_log_flush
    from tests.helpers import committed

    def seed():
        with tenant_context(live_tenant.tenant):
            user_create(email=OWNER, password=PASSWORD, role=Role.OWNER)
            endpoint, _ = endpoint_create(
                url="https://hooks.example-integrator.com/monetize/webhooks/receive-all-the-events",
                description="production receiver",
            )
            event = event_publish(
                type="payment.succeeded",
                payload={"customer": "c1", "amount": 4900, "currency": "usd", "invoice": "in_" + "9" * 30},
                customer="c1",
            )
            delivery = Delivery.objects.get(event=event)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DEAD, attempts=8, last_status_code=503, last_attempt_at=timezone.now()
            )
            for code in (503, 503, 500):
                DeliveryAttempt.objects.create(delivery=delivery, status_code=code, duration_ms=187)
            dead = InboxEvent.objects.create(
                provider="stripe", event_id="evt_1QxDeadEventWithALongIdentifier", event_type="invoice.paid",
                status=InboxStatus.DEAD, attempts=8, payload={"id": "evt_1", "data": {"object": {"price": "price_9"}}},
                last_error="InvalidProviderEvent: no price of ours is named 'price_9'",
            )  # fmt: skip
            InboxEvent.objects.create(
                provider="polar", event_id="pl_evt_2", event_type="order.paid", status=InboxStatus.APPLIED,
                attempts=1, payload={"id": "pl_evt_2"}, processed_at=timezone.now(),
            )  # fmt: skip
            now = dt.datetime.now(dt.UTC)
            events_ingest(
                events=[
                    {"id": f"b{n}", "customer": "c1", "type": "build.finished",
                     "timestamp": (now - dt.timedelta(minutes=n)).isoformat(), "properties": {"minutes": 3 + n}}
                    for n in range(3)
                ]
            )  # fmt: skip
            return {"endpoint": endpoint.pk, "delivery": delivery.pk, "dead": dead.pk}

    ids = committed(seed)
    schema = live_tenant.tenant.schema_name
    calls = [  # newest first, as the page lists them; buffered oldest first, as requests arrive
        ("POST", "/api/v1/entitlements/check", 200, None),
        ("POST", "/api/v1/events", 202, {"inserted": 998, "duplicates": 1, "rejected": 1, "codes": {"invalid_timestamp": 1}}),
        ("GET", "/api/v1/customers/c1/usage", 200, None),
        ("POST", "/api/v1/customers", 409, None),
    ]  # fmt: skip
    for n, (method, path, status, note) in reversed(list(enumerate(calls))):
        entry = {"at": time.time() - 60 * n, "method": method, "path": path, "status": status, "ms": 1.8 + n,
                 "key": live_tenant.api_key[:12], "idempotency_key": f"create-{n}" if method == "POST" else ""}  # fmt: skip
        if note:
            entry["note"] = note
        request_log_append(schema=schema, entry=entry)
    request_log_flush()
    return ids


def _fits(page, what):
    """No horizontal scroll, and no serious or critical axe-core violation (axe-core from npm)."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{what} is {width[0]} px wide in a {width[1]} px window"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => v.impact === "serious" || v.impact === "critical")
             .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`)"""
    )
    assert violations == [], f"{what}: {violations}"


@pytest.mark.parametrize("size", SIZES)
def test_owner_works_the_developers_page(server, browser, seeded, shots, size):
    assert AXE.exists(), "node_modules/axe-core is missing: run `make install` (npm ci)"
    page = browser.new_page(viewport=SIZES[size])
    page.on("dialog", lambda dialog: dialog.accept())
    _login(page, server, OWNER)

    page.goto(f"{server}/developers/")
    assert page.locator("nav a[href='/developers/']").count() >= 1  # the nav link
    figures = page.locator("[data-testid=developer-figures]").inner_text()
    assert "1 dead · 0 retrying · 0 unmatched" in figures
    calls = page.locator("[data-testid=api-calls] tbody tr")
    assert calls.count() == 4 and "/api/v1/entitlements/check" in calls.first.inner_text()  # newest first
    _fits(page, "the developers home")
    page.screenshot(path=str(shots / f"developers-home-{size}.png"), full_page=True)

    page.goto(f"{server}/developers/webhooks/")
    _fits(page, "the webhook endpoints")
    page.screenshot(path=str(shots / f"developers-webhooks-{size}.png"), full_page=True)
    with page.expect_navigation():
        page.click(f"a[href='/developers/webhooks/{seeded['endpoint']}/']")
    assert "payment.succeeded" in page.locator("[data-testid=deliveries]").inner_text()
    _fits(page, "an endpoint's deliveries")
    with page.expect_navigation():
        page.click(f"a[href='/developers/webhooks/{seeded['endpoint']}/deliveries/{seeded['delivery']}/']")
    assert "HTTP 503" in page.locator("[data-testid=attempts]").inner_text()
    with page.expect_navigation():
        page.click("[data-testid=resend] button")
    assert "Resending" in page.locator(".messages").inner_text()
    _fits(page, "a delivery")
    page.screenshot(path=str(shots / f"developers-delivery-{size}.png"), full_page=True)

    page.goto(f"{server}/developers/inbox/?status=dead")
    rows = page.locator("[data-testid=inbox] tbody tr")
    assert rows.count() == 1 and "invoice.paid" in rows.first.inner_text()
    _fits(page, "the inbox")
    page.screenshot(path=str(shots / f"developers-inbox-{size}.png"), full_page=True)
    with page.expect_navigation():
        page.click(f"a[href='/developers/inbox/{seeded['dead']}/']")
    assert "price_9" in page.locator("[data-testid=error]").inner_text()
    click_confirmed(page, "[data-testid=replay] button")
    assert "Replaying stripe event" in page.locator(".messages").inner_text()
    _fits(page, "a provider event")
    page.screenshot(path=str(shots / f"developers-inbox-event-{size}.png"), full_page=True)

    page.goto(f"{server}/developers/explorer/")
    assert "invalid_timestamp" in page.locator("[data-testid=ingest-calls]").inner_text()
    assert page.locator("[data-testid=usage-events] tbody tr").count() == 3
    _fits(page, "the explorer")
    page.screenshot(path=str(shots / f"developers-explorer-{size}.png"), full_page=True)

    page.goto(f"{server}/developers/keys/")
    page.fill("input[name=name]", "ci deploy")
    with page.expect_navigation():
        page.click("form.inline-form button[type=submit]")
    assert page.locator("#new-secret-value").inner_text().startswith("mk_")
    _fits(page, "the keys page with a new secret")
    page.screenshot(path=str(shots / f"developers-keys-{size}.png"), full_page=True)
