"""Payouts (issue 12 item 6): a creator's available balance paid to their connected account once,
requested → processing → paid | failed (a failure returns the funds), through the sandbox (instant)
and Stripe Connect at its HTTP edge (a transfer and a payout keyed `payout-<id>`, then Stripe's
`payout.paid` / `payout.failed`); concurrent requests pay once; the tenant's minimum and schedule."""

import datetime as dt
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.events.models import OutboundEvent
from billing.ledger.creators.models import Creator, Payout
from billing.ledger.creators.payouts import payout_reported, payout_transfer, payouts_scheduled_run
from billing.ledger.models import JournalTransaction
from billing.ledger.selectors import ledger_balance
from billing.providers.base import PayoutReport
from billing.providers.stripe import StripeProvider
from tests.billing.test_creator_earnings import balance, studio, tip_paid  # noqa: F401
from tests.billing.test_creator_earnings import tenant_set as earnings_tenant_set
from tests.billing.test_sandbox_checkout import advance

JSON = "application/json"


def onboard(fixture):
    url = (
        fixture.api()
        .post(
            "/api/v1/creators/ann/onboarding",
            {"provider": "sandbox", "return_url": "https://app.test/done"},
            content_type=JSON,
        )
        .json()["url"]
    )
    assert fixture.client().post(urlsplit(url).path).status_code == 302


@pytest.fixture(autouse=True)
def worker(monkeypatch):
    """The transfer task runs as a worker would take it off the queue, once the request commits."""
    from billing.ledger.creators.tasks import payout_transfer_task

    monkeypatch.setattr(
        "billing.ledger.creators.payouts._enqueue_transfer", lambda pk: payout_transfer_task.apply(args=[pk])
    )


@pytest.fixture
def tenant_set(monkeypatch):
    return earnings_tenant_set.__wrapped__(monkeypatch)


@pytest.fixture
def earned(studio, django_capture_on_commit_callbacks):  # noqa: F811
    """ann (sandbox payouts active) with 9,000 available: a 10,000 tip less the 10 % fee, released."""
    from billing.events.services import endpoint_create

    with tenant_context(studio.tenant):
        endpoint_create(url="https://hooks.example.test/in")
    tip_paid(studio, django_capture_on_commit_callbacks, amount=10_000)
    advance(studio, 8, django_capture_on_commit_callbacks)
    onboard(studio)
    assert balance(studio)["available"] == 9_000
    return studio


def request(fixture, capture, key=None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    with capture(execute=True):  # the transfer task runs once the request commits
        return fixture.api().post(
            "/api/v1/creators/ann/payouts", {"currency": "usd", **body}, content_type=JSON, **headers
        )


def events(fixture, kind):
    with tenant_context(fixture.tenant):
        return [e.payload for e in OutboundEvent.objects.filter(type=kind).order_by("id")]


def test_a_sandbox_payout_pays_the_available_balance_once(earned, django_capture_on_commit_callbacks):
    response = request(earned, django_capture_on_commit_callbacks, key="payout-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["currency"], body["provider"]) == (9_000, "usd", "sandbox")
    # the same request again (same Idempotency-Key) is the same payout
    assert request(earned, django_capture_on_commit_callbacks, key="payout-1").json()["id"] == body["id"]
    detail = earned.api().get(f"/api/v1/creators/ann/payouts/{body['id']}").json()
    assert detail["status"] == "paid" and detail["provider_payout_id"].startswith("po_sbx_")
    assert balance(earned) == {
        "currency": "usd",
        "pending": 0,
        "available": 0,
        "paid_out": 9_000,
        "lifetime": 9_000,
    }
    with tenant_context(earned.tenant):
        assert ledger_balance(account="payouts_in_transit", currency="usd") == 0
        assert [p["status"] for p in events(earned, "payout.created")] == ["requested"]
        assert [p["amount"] for p in events(earned, "payout.paid")] == [9_000]
        # the transfer task again (a redelivered message) transfers nothing more
        assert payout_transfer(payout_id=body["id"]).status == "paid"
        assert JournalTransaction.objects.filter(source="payout_paid").count() == 1
    listed = earned.api().get("/api/v1/creators/ann/payouts").json()["results"]
    assert [p["id"] for p in listed] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 9_001}, 409, "insufficient_balance"),
        ({"amount": 500}, 409, "payout_below_minimum"),  # the default minimum is 1,000
        ({"amount": "100"}, 400, "invalid_request"),
        ({"amount": 0}, 400, "invalid_request"),
        ({"currency": "dollars"}, 400, "invalid_request"),
        ({"currency": "eur"}, 409, "insufficient_balance"),
    ],
)
def test_payouts_the_balance_cannot_pay_change_nothing(
    earned, django_capture_on_commit_callbacks, body, status, code
):
    response = request(earned, django_capture_on_commit_callbacks, **body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert balance(earned)["available"] == 9_000
    with tenant_context(earned.tenant):
        assert not Payout.objects.exists()


def test_a_creator_without_an_active_payout_account_is_refused(studio, django_capture_on_commit_callbacks):  # noqa: F811
    response = request(studio, django_capture_on_commit_callbacks, amount=1_000)
    assert response.status_code == 409 and response.json()["error"]["code"] == "payouts_not_enabled"
    assert (
        studio.api()
        .post("/api/v1/creators/nobody/payouts", {"currency": "usd"}, content_type=JSON)
        .status_code
        == 404
    )


def test_two_concurrent_requests_pay_the_balance_once(live_tenant):
    from billing.ledger.creators.payouts import PayoutRefused, payout_request
    from billing.ledger.services import ledger_post
    from tests.helpers import committed, run_parallel

    def seed():
        with tenant_context(live_tenant.tenant):
            creator = Creator.objects.create(
                handle="ann", display_name="Ann", payout_status="active", payout_provider="sandbox",
                provider_account_id="acct_sbx_1",
            )  # fmt: skip
            ledger_post(source="test", source_id="seed", occurred_at=dt.datetime.now(dt.UTC), description="seed",
                        entries=[("creator_share", "usd", 5_000), ("payable:creator:ann", "usd", -5_000)])  # fmt: skip
            return creator.pk

    pk = committed(seed)

    def ask(_):
        with tenant_context(live_tenant.tenant):
            try:
                return payout_request(creator=Creator.objects.get(pk=pk), currency="usd").amount
            except PayoutRefused as exc:
                return exc.code

    results = sorted(map(str, run_parallel(ask, 4)))
    assert results == ["5000", "insufficient_balance", "insufficient_balance", "insufficient_balance"]

    def count():
        with tenant_context(live_tenant.tenant):
            return Payout.objects.count(), ledger_balance(account="payable:creator:ann", currency="usd")

    assert committed(count) == (1, 0)


# --- Stripe Connect at its HTTP edge ----------------------------------------------------------------


class FakeStripePayouts(stripe.HTTPClient):
    name = "fake"

    def __init__(self):
        super().__init__()
        self.calls = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        form = parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))
        path = urlsplit(url).path
        self.calls.append((path, {k: v[0] for k, v in form.items()}, dict(headers or {})))
        if path == "/v1/transfers":
            return json.dumps({"id": "tr_1", "object": "transfer", "amount": int(form["amount"][0])}), 200, {}
        if path == "/v1/payouts":
            return (
                json.dumps(
                    {"id": "po_1", "object": "payout", "status": "pending", "amount": int(form["amount"][0])}
                ),
                200,
                {},
            )
        return json.dumps({"error": {"message": f"no route {path}"}}), 404, {}


def test_a_stripe_payout_transfers_then_pays_out_and_follows_stripes_reports(
    earned, django_capture_on_commit_callbacks, monkeypatch
):
    from billing.providers.services import provider_account_upsert

    fake = FakeStripePayouts()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    with tenant_context(earned.tenant):
        provider_account_upsert(
            provider="stripe", credentials={"api_key": "sk_test_x"}, webhook_secret="whsec_x"
        )
        Creator.objects.filter(handle="ann").update(payout_provider="stripe", provider_account_id="acct_123")
    response = request(earned, django_capture_on_commit_callbacks, amount=4_000)
    assert response.status_code == 201, response.content
    payout_id = response.json()["id"]
    (transfer_path, transfer, transfer_headers), (payout_path, payout, payout_headers) = fake.calls
    assert (transfer_path, transfer["destination"], transfer["amount"]) == (
        "/v1/transfers",
        "acct_123",
        "4000",
    )
    assert transfer_headers["Idempotency-Key"] == f"payout-{payout_id}"
    assert (payout_path, payout["amount"], payout["metadata[monetize_payout]"]) == (
        "/v1/payouts",
        "4000",
        f"payout-{payout_id}",
    )
    assert payout_headers["Idempotency-Key"] == f"payout-{payout_id}-payout"
    assert payout_headers["Stripe-Account"] == "acct_123"
    detail = earned.api().get(f"/api/v1/creators/ann/payouts/{payout_id}").json()
    assert (detail["status"], detail["provider_payout_id"]) == ("processing", "po_1")
    assert balance(earned)["available"] == 5_000
    with tenant_context(earned.tenant):
        # Stripe's payout.failed (a Connect event): the funds return, once however often it comes
        for _ in range(2):
            payout_reported(provider="stripe", report=PayoutReport(payout_id="po_1", status="failed", account_id="acct_123",
                                                                   failure_message="account_closed"))  # fmt: skip
        failed = Payout.objects.get(pk=payout_id)
        assert (failed.status, failed.failure_message) == ("failed", "account_closed")
        assert ledger_balance(account="payouts_in_transit", currency="usd") == 0
    assert balance(earned)["available"] == 9_000 and balance(earned)["paid_out"] == 0
    assert [p["failure_message"] for p in events(earned, "payout.failed")] == ["account_closed"]


def test_stripe_payout_events_through_the_inbox(earned, django_capture_on_commit_callbacks, monkeypatch):
    """Stripe's signed `payout.paid` of the connected account, through the webhook endpoint and the inbox."""
    from billing.providers.services import provider_account_upsert
    from tests.billing.test_webhooks_in import process_all

    monkeypatch.setattr(StripeProvider, "http_client", FakeStripePayouts())
    with tenant_context(earned.tenant):
        provider_account_upsert(
            provider="stripe", credentials={"api_key": "sk_test_x"}, webhook_secret="whsec_test"
        )
        Creator.objects.filter(handle="ann").update(payout_provider="stripe", provider_account_id="acct_123")
    payout_id = request(earned, django_capture_on_commit_callbacks, amount=4_000).json()["id"]
    event = {
        "id": "evt_po_paid", "object": "event", "type": "payout.paid", "account": "acct_123", "created": 1_800_000_000,
        "api_version": "2024-06-20", "livemode": False,
        "data": {"object": {"id": "po_1", "object": "payout", "status": "paid", "amount": 4_000, "currency": "usd",
                            "metadata": {"monetize_payout": f"payout-{payout_id}"}}},
    }  # fmt: skip
    body = json.dumps(event)
    now = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{now}.{body}", "whsec_test")
    for _ in range(2):  # delivered twice
        response = earned.client().post(
            "/webhooks/stripe/", body, content_type=JSON, HTTP_STRIPE_SIGNATURE=f"t={now},v1={signature}"
        )
        assert response.status_code == 200, response.content
    process_all(earned)
    with tenant_context(earned.tenant):
        assert Payout.objects.get(pk=payout_id).status == "paid"
        assert JournalTransaction.objects.filter(source="payout_paid").count() == 1
        assert ledger_balance(account="payouts_in_transit", currency="usd") == 0
    assert balance(earned)["paid_out"] == 4_000


def test_a_weekly_schedule_pays_out_on_mondays_once(earned, tenant_set, django_capture_on_commit_callbacks):
    tenant_set(earned, payout_schedule="weekly")
    with tenant_context(earned.tenant):
        tuesday = dt.datetime(2026, 12, 8, 1, tzinfo=dt.UTC)
        monday = dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC)
        assert payouts_scheduled_run(now=tuesday) == 0
        with django_capture_on_commit_callbacks(execute=True):
            assert payouts_scheduled_run(now=monday) == 1
            assert payouts_scheduled_run(now=monday) == 0  # the run again: nothing left to pay, none more
        assert Payout.objects.count() == 1
        assert Payout.objects.get().status == "paid" and Payout.objects.get().amount == 9_000
