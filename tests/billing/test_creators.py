"""Creators (issue 12 item 3): profiles through the API, payout onboarding (the sandbox's instant
page; Stripe Connect Express with only Stripe's HTTP edge faked, its status from signed
`account.updated` webhooks), channel tiers and the public channel listing, a fan's checkout."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.ledger.creators.models import Creator, PayoutStatus
from billing.memberships.models import Membership
from billing.providers.services import provider_account_upsert
from billing.providers.stripe import StripeProvider
from billing.tiers.models import Tier
from tests.billing.test_entitlements import make_customer
from tests.billing.test_sandbox_checkout import pay
from tests.billing.test_stripe_events import deliver as stripe_deliver
from tests.billing.test_stripe_events import process as stripe_process
from tests.billing.test_webhooks_in import process_all

JSON = "application/json"


def create(fixture, handle="ann", key=None, **body):
    payload = {"handle": handle, "display_name": "Ann B", "email": "ann@example.test", **body}
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return fixture.api().post("/api/v1/creators", payload, content_type=JSON, **extra)


@pytest.fixture
def sandbox(alpha, monkeypatch):
    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    return alpha


def test_a_creator_is_created_once_read_with_its_balance_and_listed(alpha):
    first = create(alpha, key="k1")
    assert first.status_code == 201, first.content
    assert first.json() == {
        "handle": "ann", "display_name": "Ann B", "email": "ann@example.test", "payout_status": "not_started",
        "payout_provider": "", "created_at": first.json()["created_at"], "balance": [],
    }  # fmt: skip
    replay = create(alpha, key="k1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    taken = create(alpha, key="k2")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "creator_exists"
    assert create(alpha, handle="bob", display_name="Bob").status_code == 201
    page = alpha.api().get("/api/v1/creators?limit=1").json()
    assert [c["handle"] for c in page["results"]] == ["bob"] and page["next"]
    rest = alpha.api().get(page["next"]).json()
    assert [c["handle"] for c in rest["results"]] == ["ann"]
    detail = alpha.api().get("/api/v1/creators/ann")
    assert detail.status_code == 200 and detail.json()["balance"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"handle": "Ann"},
        {"handle": "a"},
        {"handle": "ann b"},
        {"handle": 12},
        {"display_name": ""},
        {"display_name": 5},
        {"email": "not-an-email"},
    ],
)
def test_bad_creators_are_refused_with_a_4xx(alpha, body):
    response = create(alpha, **body)
    assert response.status_code == 400, response.content
    with tenant_context(alpha.tenant):
        assert not Creator.objects.exists()


def test_another_tenants_creator_is_a_404(alpha, beta):
    assert create(alpha).status_code == 201
    for path in ("/api/v1/creators/ann", "/api/v1/creators/ann/tiers", "/api/v1/channels/ann/tiers"):
        response = beta.api().get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_creator", path
    assert beta.api().get("/api/v1/creators").json()["results"] == []


def test_sandbox_onboarding_activates_at_once_through_its_page(sandbox):
    assert create(sandbox).status_code == 201
    response = sandbox.api().post(
        "/api/v1/creators/ann/onboarding",
        {"provider": "sandbox", "return_url": "https://app.test/creator/done"},
        content_type=JSON,
    )
    assert response.status_code == 201, response.content
    url = response.json()["url"]
    assert url.startswith("http://alpha.test/sandbox/connect/")
    assert sandbox.api().get("/api/v1/creators/ann").json()["payout_status"] == "pending"
    path = urlsplit(url).path
    page = sandbox.client().get(path)
    assert page.status_code == 200 and b"Activate payouts" in page.content
    done = sandbox.client().post(path)
    assert done.status_code == 302 and done["Location"] == "https://app.test/creator/done"
    body = sandbox.api().get("/api/v1/creators/ann").json()
    assert (body["payout_status"], body["payout_provider"]) == ("active", "sandbox")
    # a forged link is no page, and never redirects anywhere
    assert sandbox.client().get(path[:-3] + "xx/").status_code == 404


class FakeConnect(stripe.HTTPClient):
    """Stripe's Connect API as far as onboarding uses it (accounts, account links)."""

    name = "fake"

    def __init__(self):
        super().__init__()
        self.calls = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        form = parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))
        self.calls.append({"path": path, "form": form, "headers": dict(headers or {})})
        if path == "/v1/accounts":
            return json.dumps({"id": "acct_1Creator", "object": "account"}), 200, {}
        if path == "/v1/account_links":
            link = {"object": "account_link", "url": "https://connect.stripe.test/setup/e/acct_1Creator/x",
                    "expires_at": 1900000000, "created": 1800000000}  # fmt: skip
            return json.dumps(link), 200, {}
        return json.dumps({"error": {"type": "invalid_request_error", "message": "no route"}}), 404, {}

    def close(self):
        pass


def account_event(event_id, created=1_800_000_000, **fields):
    account = {"id": "acct_1Creator", "object": "account", "metadata": {"monetize_creator": "ann"},
               "charges_enabled": False, "payouts_enabled": False, "details_submitted": False,
               "requirements": {"disabled_reason": None}, **fields}  # fmt: skip
    return {"id": event_id, "object": "event", "type": "account.updated", "created": created,
            "data": {"object": account}}  # fmt: skip


def test_stripe_connect_express_onboarding_then_account_updated_webhooks(alpha, monkeypatch):
    fake = FakeConnect()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    with tenant_context(alpha.tenant):
        provider_account_upsert(
            provider="stripe", credentials={"api_key": "sk_test_123"}, webhook_secret="whsec_c"
        )
    assert create(alpha).status_code == 201
    body = {"provider": "stripe", "return_url": "https://app.test/creator/done"}
    first = alpha.api().post("/api/v1/creators/ann/onboarding", body, content_type=JSON)
    assert first.status_code == 201, first.content
    assert first.json() == {"url": "https://connect.stripe.test/setup/e/acct_1Creator/x"}
    account_call, link_call = fake.calls
    assert account_call["path"] == "/v1/accounts" and account_call["form"]["type"] == ["express"]
    assert account_call["form"]["metadata[monetize_creator]"] == ["ann"]
    assert account_call["headers"]["Idempotency-Key"].startswith("creator-")
    assert link_call["form"]["account"] == ["acct_1Creator"]
    assert link_call["form"]["type"] == ["account_onboarding"]
    # a second link reuses the account (no second account is made)
    assert alpha.api().post("/api/v1/creators/ann/onboarding", body, content_type=JSON).status_code == 201
    assert [c["path"] for c in fake.calls[2:]] == ["/v1/account_links"]
    assert alpha.api().get("/api/v1/creators/ann").json()["payout_status"] == "pending"

    # Stripe's account.updated, signed with its real scheme, delivered twice and out of order
    active = account_event(
        "evt_acct_2", 1_800_000_100, charges_enabled=True, payouts_enabled=True, details_submitted=True
    )
    stripe_deliver(alpha, "whsec_c", active, active, account_event("evt_acct_1"))
    stripe_process(alpha)
    assert alpha.api().get("/api/v1/creators/ann").json()["payout_status"] == "active"
    restricted = account_event(
        "evt_acct_3",
        1_800_000_200,
        details_submitted=True,
        requirements={"disabled_reason": "rejected.fraud"},
    )
    stripe_deliver(alpha, "whsec_c", restricted)
    stripe_process(alpha)
    assert alpha.api().get("/api/v1/creators/ann").json()["payout_status"] == "restricted"


def test_onboarding_refuses_bad_input_and_providers_without_connect(sandbox):
    assert create(sandbox).status_code == 201
    url = "/api/v1/creators/ann/onboarding"
    bad = sandbox.api().post(url, {"provider": "sandbox", "return_url": "nope"}, content_type=JSON)
    assert bad.status_code == 400
    missing = sandbox.api().post(
        url, {"provider": "stripe", "return_url": "https://a.test"}, content_type=JSON
    )
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "provider_not_configured"
    unknown = sandbox.api().post(
        "/api/v1/creators/nobody/onboarding", {"provider": "sandbox", "return_url": "https://a.test"},
        content_type=JSON,
    )  # fmt: skip
    assert unknown.status_code == 404
    with tenant_context(sandbox.tenant):
        assert Creator.objects.get(handle="ann").payout_status == PayoutStatus.NOT_STARTED


def tier(fixture, code="gold", amount=500, **body):
    payload = {"code": code, "name": code.title(), "amount": amount, "currency": "usd", **body}
    return fixture.api().post("/api/v1/creators/ann/tiers", payload, content_type=JSON)


def test_creator_tiers_are_published_listed_publicly_and_taken_down(sandbox):
    assert create(sandbox).status_code == 201
    made = tier(sandbox)
    assert made.status_code == 201, made.content
    assert made.json()["code"] == "ann-gold"
    assert made.json()["tier"]["prices"][0]["code"] == "ann-gold-month"
    assert tier(sandbox, "silver", 1200, interval="year").status_code == 201
    assert tier(sandbox).json()["error"]["code"] == "tier_exists"
    for body in ({"amount": 0}, {"interval": "one_time"}, {"code": "Gold!"}, {"currency": "USD"}):
        assert tier(sandbox, **{"code": "x", **body}).status_code == 400, body
    public = sandbox.client().get("/api/v1/channels/ann/tiers")  # no API key
    assert public.status_code == 200
    assert [t["code"] for t in public.json()["results"]] == ["ann-gold", "ann-silver"]
    # the platform's own catalog does not list channel tiers
    assert "ann-gold" not in [
        t["code"] for t in sandbox.api().get("/api/v1/tiers?all=true").json()["results"]
    ]
    assert sandbox.api().delete("/api/v1/creators/ann/tiers/silver").status_code == 204
    assert sandbox.api().delete("/api/v1/creators/ann/tiers/silver").status_code == 404
    assert [t["code"] for t in sandbox.api().get("/api/v1/creators/ann/tiers").json()["results"]] == [
        "ann-gold"
    ]


def test_a_fan_joins_a_creator_tier_through_the_checkout_and_the_tier_stays_while_they_are_a_member(
    sandbox, django_capture_on_commit_callbacks
):
    assert create(sandbox).status_code == 201
    assert tier(sandbox).status_code == 201
    make_customer(sandbox, "fan1")
    started = sandbox.api().post(
        "/api/v1/checkouts",
        {"customer": "fan1", "tier": "ann-gold", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"},
        content_type=JSON,
    )  # fmt: skip
    assert started.status_code == 201, started.content
    pay(sandbox, started.json()["url"], "4242424242424242", django_capture_on_commit_callbacks)
    process_all(sandbox)
    with tenant_context(sandbox.tenant):
        membership = Membership.objects.get(customer__external_id="fan1", status="active")
        assert membership.tier.code == "ann-gold" and membership.tier.creator.handle == "ann"
    refused = sandbox.api().delete("/api/v1/creators/ann/tiers/gold")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "tier_in_use"


def test_a_user_with_the_creator_role_gets_a_creator(alpha):
    from accounts.roles import Role
    from accounts.services import user_create
    from billing.ledger.creators.services import creator_for_user

    with tenant_context(alpha.tenant):
        user = user_create(email="Zoe.K@example.test", password=None, role=Role.CREATOR)
        creator = creator_for_user(user=user)
        assert creator.handle == "zoek" and creator.user == user
        assert creator_for_user(user=user) == creator
        other = user_create(email="zoek@other.test", password=None, role=Role.CREATOR)
        assert creator_for_user(user=other).handle == "zoek-2"


def test_channel_page_urls_are_absolute(sandbox):
    assert create(sandbox).status_code == 201
    url = sandbox.api().post(
        "/api/v1/creators/ann/onboarding", {"provider": "sandbox", "return_url": "https://a.test"},
        content_type=JSON,
    ).json()["url"]  # fmt: skip
    assert re.match(r"^http://alpha\.test/sandbox/connect/[^/]+/$", url)


def test_the_owner_sets_the_creator_settings_on_the_settings_page(alpha):
    from tenants.models import Tenant
    from tests.conftest import PASSWORD

    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert "Platform fee on creators" in client.get("/settings/").content.decode()
    base = {"rate_limit_failure_mode": "open", "unknown_usage_customer": "reject", "invoice_address": ""}
    bad = client.post("/settings/", {**base, "tip_min_amount": 900, "tip_max_amount": 800})
    assert bad.status_code == 200 and "The smallest tip is above the largest." in bad.content.decode()
    saved = client.post(
        "/settings/",
        {
            **base,
            "creator_fee_bps": 1500,
            "earnings_hold_days": 3,
            "tip_min_amount": 200,
            "tip_max_amount": 900,
        },
        follow=True,
    )
    assert "Settings saved." in saved.content.decode()
    row = Tenant.objects.get(pk=alpha.tenant.pk)
    assert (row.creator_fee_bps, row.earnings_hold_days, row.tip_min_amount, row.tip_max_amount) == (
        1500,
        3,
        200,
        900,
    )
    assert row.sandbox_fee_bps == 0  # left empty: unchanged


def test_the_api_refuses_a_code_too_long_for_the_handle_with_a_400(alpha):
    # a 61-character tier code made a 67-character price code: a DataError (500) before
    made = alpha.api().post("/api/v1/creators", {"handle": "h" * 40, "display_name": "H"},
                            content_type="application/json")  # fmt: skip
    assert made.status_code == 201
    response = alpha.api().post(f"/api/v1/creators/{'h' * 40}/tiers", {"code": "c" * 20, "name": "C", "amount": 500,
                                "currency": "usd"}, content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_tier"
    assert (
        response.json()["error"]["message"]
        == f"With the handle '{'h' * 40}', a tier code is at most 14 characters."
    )
    with tenant_context(alpha.tenant):
        assert not Tier.objects.filter(creator__isnull=False).exists()
