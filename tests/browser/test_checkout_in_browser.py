"""A customer goes from the pricing page to a paid membership and back to free, in a real browser
(Debian's chromium driven by Playwright), against the web server and a Celery worker on committed data."""

import re
import time

import pytest

from tests.browser.conftest import click_confirmed, needs_chromium
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.worker,
    pytest.mark.server,
    needs_chromium,
]


def _until(page, url, pattern, seconds=30):
    """Reload until the page shows `pattern` (the worker applies webhooks asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if re.search(pattern, page.content()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} never appeared on {url}")
        time.sleep(0.3)


def test_pricing_to_paid_membership_and_back_to_free(server, worker, page):
    page.goto(f"{server}/accounts/signup/")
    page.fill("input[name=email]", "browser@live.test")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")

    page.goto(f"{server}/pricing/?interval=year")
    with page.expect_navigation(url="**/billing/checkout/?price=pro-yearly"):
        page.click("a[data-price='pro-yearly']")
    with page.expect_navigation(url="**/sandbox/checkout/**"):
        page.click("button[type=submit]")
    assert "/sandbox/checkout/" in page.url
    page.fill("input[name=card]", "4000 0000 0000 0002")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "declined" in page.content()
    page.fill("input[name=card]", "4242 4242 4242 4242")
    with page.expect_navigation(url="**/account/plan/?checkout=done*"):
        page.click("button[type=submit]")

    _until(page, f"{server}/account/plan/", r'data-testid="tier">Pro<')
    assert "renews on" in page.content()

    click_confirmed(page, "button[value=cancel_now]")  # a form posting to /billing/membership/
    _until(page, f"{server}/account/plan/", r'data-testid="tier">Community<')
    assert "membership was canceled" in page.content()
