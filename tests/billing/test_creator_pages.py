"""The creator dashboard (issue 12 item 8, first part): balances, monthly earnings, members per
tier, tips per item, the ledger with its CSV export, payout onboarding; for creators only."""

import csv
import io

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_create
from billing.ledger.creators.models import Creator
from tests.billing.test_creator_earnings import URLS, tip_paid
from tests.billing.test_creators import create, tier
from tests.billing.test_entitlements import make_customer
from tests.billing.test_sandbox_checkout import pay
from tests.billing.test_webhooks_in import process_all
from tests.conftest import PASSWORD


@pytest.fixture
def studio(alpha, monkeypatch):
    """alpha with the sandbox, creator `ann` and fan `fan1` (as in test_creator_earnings)."""
    from billing.providers.services import provider_account_upsert

    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    assert create(alpha).status_code == 201
    make_customer(alpha, "fan1")
    return alpha


def login(fixture, email, role):
    with tenant_context(fixture.tenant):
        user_create(email=email, password=PASSWORD, role=role)
    client = Client(HTTP_HOST=fixture.host)
    client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    return client


def test_a_new_creator_sees_empty_states_and_sets_up_payouts(studio):
    client = login(studio, "newbie@alpha.test", Role.CREATOR)
    page = client.get("/creator/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No earnings yet." in html and "No tiers yet" in html and "No tips yet." in html
    assert "Set up payouts" in html and 'href="/creator/"' in html
    started = client.post("/creator/onboarding/", {"provider": "sandbox"})
    assert started.status_code == 302 and started["Location"].startswith("/sandbox/connect/")
    back = client.post(started["Location"])
    assert back.status_code == 302 and back["Location"] == "http://alpha.test/creator/"
    assert "Active" in client.get("/creator/").content.decode()
    with tenant_context(studio.tenant):
        assert Creator.objects.get(user__email="newbie@alpha.test").payout_status == "active"


def test_the_dashboard_shows_figures_members_tips_and_exports_the_ledger(
    studio, django_capture_on_commit_callbacks
):
    client = login(studio, "ann@alpha.test", Role.CREATOR)
    with tenant_context(studio.tenant):  # the API-made creator `ann` is this user's
        Creator.objects.filter(handle="ann").update(user=User.objects.get(email="ann@alpha.test"))
    assert tier(studio, "gold", 500).status_code == 201
    started = studio.api().post(
        "/api/v1/checkouts", {"customer": "fan1", "tier": "ann-gold", **URLS}, content_type="application/json"
    )
    pay(studio, started.json()["url"], "4242424242424242", django_capture_on_commit_callbacks)
    process_all(studio)
    tip_paid(studio, django_capture_on_commit_callbacks, 1000, item_id="video-42")
    html = client.get("/creator/").content.decode()
    assert "$13.50" in html  # pending: 4.50 + 9.00
    assert "video-42" in html and "$9.00" in html and "Gold" in html
    assert '<canvas data-chart="chart-creator-earnings"' in html  # the monthly chart (Chart.js)
    export = client.get("/creator/?format=csv")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:4] == ["occurred_at", "account", "currency", "amount"]
    assert sorted(int(row[3]) for row in rows[1:]) == [450, 900]


def test_only_creators_see_the_dashboard(studio):
    customer = login(studio, "fan@alpha.test", Role.CUSTOMER)
    assert customer.get("/creator/").status_code == 403
    assert Client(HTTP_HOST=studio.host).get("/creator/").status_code == 302  # to the login page
