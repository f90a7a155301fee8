"""Provider webhooks in: verified by the provider's own scheme, stored before the 200, applied once,
in any order."""

import datetime as dt
import itertools
import json
import time

import pytest
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent, InboxStatus
from billing.inbox.services import inbox_process, inbox_replay, inbox_sweep
from billing.memberships.models import Membership, MembershipHistory, Payment
from billing.providers.sandbox import SandboxProvider
from billing.providers.services import provider_account_upsert
from tests.billing.test_entitlements import check

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sandbox(ci_catalog):
    with tenant_context(ci_catalog.tenant):
        account = provider_account_upsert(provider="sandbox")
        return ci_catalog, SandboxProvider(webhook_secret=account.webhook_secret)


def sub_event(
    event_id, *, status="active", minutes=0, price="team-monthly", customer="c1", sub="sub_1", **extra
):
    return {
        "id": event_id,
        "type": extra.pop("type", "subscription.updated"),
        "created_at": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        "data": {"subscription_id": sub, "status": status, "customer": customer, "price": price, "quantity": 1,
                 "period_start": T0.isoformat(), "period_end": (T0 + dt.timedelta(days=30)).isoformat(), **extra},
    }  # fmt: skip


def deliver(fixture, adapter, payload, **sign):
    body, headers = adapter.sign(payload=payload, **sign)
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return fixture.client().post("/webhooks/sandbox/", body, content_type="application/json", **meta)


def process_all(fixture):
    with tenant_context(fixture.tenant):
        for inbox_id in InboxEvent.objects.order_by("id").values_list("id", flat=True):
            inbox_process(inbox_id=inbox_id)


def test_signed_event_is_stored_then_applied(sandbox):
    fixture, adapter = sandbox
    response = deliver(fixture, adapter, sub_event("evt_1", type="subscription.created"))
    assert response.status_code == 200 and response.json() == {
        "received": True,
        "duplicate": False,
    }
    with tenant_context(fixture.tenant):
        assert InboxEvent.objects.get().status == InboxStatus.PENDING  # acknowledged before applied
    assert check(fixture, feature="private_projects").status_code == 404  # no such customer yet
    process_all(fixture)
    body = check(fixture, feature="private_projects").json()
    assert body["tier"] == "team" and body["limit"] == 10
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="sandbox")
        assert (membership.status, membership.provider_subscription_id, membership.price.code) == (
            "active",
            "sub_1",
            "team-monthly",
        )
        assert InboxEvent.objects.get().status == InboxStatus.APPLIED


def test_the_same_event_three_times_applies_once(sandbox):
    fixture, adapter = sandbox
    responses = [deliver(fixture, adapter, sub_event("evt_dup")) for _ in range(3)]
    assert [r.json()["duplicate"] for r in responses] == [False, True, True]
    process_all(fixture)
    process_all(fixture)  # processing again is "already done"
    with tenant_context(fixture.tenant):
        assert InboxEvent.objects.count() == 1
        assert MembershipHistory.objects.filter(event_id="evt_dup").count() == 1


SEQUENCE = [
    sub_event("evt_a", type="subscription.created", status="incomplete", minutes=0),
    sub_event("evt_b", status="active", minutes=1),
    sub_event("evt_c", status="active", minutes=2, cancel_at_period_end=True),
    sub_event("evt_d", type="subscription.canceled", status="canceled", minutes=3),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_shuffled_deliveries_end_in_the_same_state(sandbox, order):
    fixture, adapter = sandbox
    for index in order:
        deliver(fixture, adapter, SEQUENCE[index])
        process_all(fixture)  # applied as they arrive
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="sandbox")
        # the newest event's state wins, whatever the order of arrival
        assert (membership.status, membership.provider_event_at) == ("canceled", T0 + dt.timedelta(minutes=3))
        assert membership.ended_at is not None
    assert check(fixture, feature="private_projects").json()["tier"] == "community"  # back on the free tier


def test_an_upgrade_then_cancel_moves_entitlements(sandbox):
    fixture, adapter = sandbox
    fixture.api().post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert check(fixture, feature="custom_runners").json()["allowed"] is False
    deliver(fixture, adapter, sub_event("evt_up", price="pro-monthly"))
    process_all(fixture)
    assert check(fixture, feature="custom_runners").json()["allowed"] is True
    deliver(
        fixture,
        adapter,
        sub_event(
            "evt_down", status="canceled", price="pro-monthly", minutes=5, type="subscription.canceled"
        ),
    )
    process_all(fixture)
    assert check(fixture, feature="custom_runners").json()["allowed"] is False


@pytest.mark.parametrize(
    "tamper",
    ["signature", "body", "timestamp", "missing"],
)
def test_bad_signatures_are_400_and_store_nothing(sandbox, tamper):
    fixture, adapter = sandbox
    body, headers = adapter.sign(payload=sub_event("evt_bad"))
    if tamper == "signature":
        headers["webhook-signature"] = "v1," + "A" * 44
    elif tamper == "body":
        body = body.replace(b"active", b"paused")
    elif tamper == "timestamp":
        body, headers = adapter.sign(
            payload=sub_event("evt_bad"), at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        )
    else:
        headers = {}
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = fixture.client().post("/webhooks/sandbox/", body, content_type="application/json", **meta)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    with tenant_context(fixture.tenant):
        assert not InboxEvent.objects.exists()


def test_another_tenants_secret_is_rejected(sandbox, beta):
    fixture, adapter = sandbox
    with tenant_context(beta.tenant):
        provider_account_upsert(provider="sandbox")
    body, headers = adapter.sign(payload=sub_event("evt_x"))
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    assert (
        beta.client().post("/webhooks/sandbox/", body, content_type="application/json", **meta).status_code
        == 400
    )


def test_unknown_provider_and_wrong_method(sandbox):
    fixture, _ = sandbox
    assert (
        fixture.client().post("/webhooks/paypal/", b"{}", content_type="application/json").status_code == 404
    )
    assert fixture.client().get("/webhooks/sandbox/").status_code == 405


def test_failures_back_off_then_die_and_can_be_replayed(sandbox, settings, monkeypatch):
    fixture, adapter = sandbox
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    enqueued = []
    monkeypatch.setattr(
        "billing.inbox.services._enqueue", lambda inbox_id, countdown=None: enqueued.append(inbox_id)
    )
    # a payment of a subscription not applied yet: a transient failure (its subscription may come)
    payment = {"id": "evt_fail", "type": "payment.succeeded", "created_at": T0.isoformat(),
               "data": {"payment_id": "pay_1", "amount": 1900, "currency": "usd", "customer": "c1",
                        "subscription_id": "sub_never"}}  # fmt: skip
    deliver(fixture, adapter, payment)
    with tenant_context(fixture.tenant):
        event = InboxEvent.objects.get()
        assert inbox_process(inbox_id=event.pk) == InboxStatus.FAILED
        event.refresh_from_db()
        assert event.attempts == 1 and "sub_never" in event.last_error and event.next_attempt_at is not None
        assert not Payment.objects.exists()  # the failed application rolled back whole
        assert inbox_process(inbox_id=event.pk) == InboxStatus.FAILED
        assert inbox_process(inbox_id=event.pk) == InboxStatus.DEAD
        assert inbox_process(inbox_id=event.pk) == InboxStatus.DEAD  # dead stays dead until replayed
        assert inbox_replay(inbox_ids=[event.pk]) == 1
        event.refresh_from_db()
        assert (event.status, event.attempts) == (InboxStatus.PENDING, 0)


def test_sweeper_reenqueues_stale_pending_and_due_retries(sandbox, monkeypatch):
    fixture, adapter = sandbox
    enqueued = []
    monkeypatch.setattr(
        "billing.inbox.services._enqueue", lambda inbox_id, countdown=None: enqueued.append(inbox_id)
    )
    deliver(fixture, adapter, sub_event("evt_lost"))
    with tenant_context(fixture.tenant):
        event = InboxEvent.objects.get()
        assert inbox_sweep() == 0  # just received: the broker message is probably on its way
        assert inbox_sweep(now=event.received_at + dt.timedelta(minutes=5)) == 1
        assert event.pk in enqueued


@pytest.mark.worker
def test_receipt_to_applied_with_a_real_worker(live_tenant, worker):
    """The whole path on committed data: HTTP delivery → inbox → broker → worker → membership."""
    from tests.helpers import committed

    def setup():
        with tenant_context(live_tenant.tenant):
            return provider_account_upsert(provider="sandbox").webhook_secret

    adapter = SandboxProvider(webhook_secret=committed(setup))
    status = committed(
        lambda: deliver(live_tenant, adapter, sub_event("evt_live", price="pro-monthly")).status_code
    )
    assert status == 200

    def tier():
        with tenant_context(live_tenant.tenant):
            membership = Membership.objects.filter(provider="sandbox").first()
            return membership.tier.code if membership else None

    deadline = time.monotonic() + 30
    while committed(tier) != "pro" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert committed(tier) == "pro"
    assert (
        committed(lambda: json.loads(check(live_tenant, feature="custom_runners").content)["allowed"]) is True
    )


def test_frozen_broker_still_acknowledges_a_provider_event_promptly(
    sandbox, private_broker, django_capture_on_commit_callbacks
):
    from kernel.metrics import ENQUEUE_FAILURES

    fixture, adapter = sandbox
    failures = ENQUEUE_FAILURES.labels(task="webhooks.process")._value.get()
    private_broker.stop()  # SIGSTOP: the publish after commit hangs instead of being refused
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(fixture, adapter, sub_event("evt_frozen"))
    assert response.status_code == 200 and time.monotonic() - started < 8
    assert ENQUEUE_FAILURES.labels(task="webhooks.process")._value.get() == failures + 1
    with tenant_context(fixture.tenant):
        event = InboxEvent.objects.get()  # stored, pending: the sweeper enqueues it later
        assert event.status == InboxStatus.PENDING
        assert inbox_sweep(now=event.received_at + dt.timedelta(minutes=5)) == 1  # (fails again, counted)
