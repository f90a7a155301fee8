"""The inbox worker applies a tenant's waiting provider events in batches (billing.inbox.drain):
once each, in any order, a poison event alone parked, the customers told once per batch, and one
broker message for a burst (issue 10 item 22)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from billing.inbox.drain import inbox_drain
from billing.inbox.models import InboxEvent, InboxStatus
from billing.inbox.services import inbox_process, inbox_replay
from billing.memberships.models import Membership, MembershipHistory, Payment
from billing.memberships.signals import membership_changed
from billing.providers.sandbox import SandboxProvider
from billing.providers.services import provider_account_upsert
from tests.billing.test_webhooks_in import SEQUENCE, T0, deliver, sub_event
from tests.helpers import committed, run_parallel


@pytest.fixture
def sandbox(ci_catalog, monkeypatch):
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    with tenant_context(ci_catalog.tenant):
        account = provider_account_upsert(provider="sandbox")
        return ci_catalog, SandboxProvider(webhook_secret=account.webhook_secret)


def payment_event(event_id, *, sub, customer="c1"):
    return {"id": event_id, "type": "payment.succeeded", "created_at": T0.isoformat(),
            "data": {"payment_id": f"pay_{event_id}", "amount": 1900, "currency": "usd", "customer": customer,
                     "subscription_id": sub}}  # fmt: skip


def statuses(tenant):
    with tenant_context(tenant):
        return dict(InboxEvent.objects.values_list("event_id", "status"))


def test_a_poison_event_in_a_burst_is_parked_and_the_others_apply(sandbox):
    fixture, adapter = sandbox
    for i in range(3):
        deliver(fixture, adapter, sub_event(f"evt_{i}", customer=f"c{i}", sub=f"sub_{i}"))
    # permanent: a price we do not sell; transient: a payment of a subscription not seen yet
    deliver(fixture, adapter, sub_event("evt_bad_price", customer="c7", sub="sub_7", price="nope"))
    deliver(fixture, adapter, payment_event("evt_early_payment", sub="sub_later", customer="c8"))
    for i in range(3, 6):
        deliver(fixture, adapter, sub_event(f"evt_{i}", customer=f"c{i}", sub=f"sub_{i}"))
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 8
        assert set(Membership.objects.values_list("provider_subscription_id", flat=True)) == {
            f"sub_{i}" for i in range(6)
        }
        bad = InboxEvent.objects.get(event_id="evt_bad_price")
        assert bad.status == InboxStatus.UNMATCHED and "nope" in bad.last_error and bad.attempts == 1
        early = InboxEvent.objects.get(event_id="evt_early_payment")
        assert early.status == InboxStatus.FAILED and "sub_later" in early.last_error
        assert early.next_attempt_at is not None and early.attempts == 1
        assert not Payment.objects.exists()  # the failed application rolled back whole
        assert inbox_drain() == 0  # nothing due: the failure waits for its retry
    assert {
        k: v for k, v in statuses(fixture.tenant).items() if k.startswith("evt_") and k[4:].isdigit()
    } == {f"evt_{i}": InboxStatus.APPLIED for i in range(6)}
    # the subscription arrives, staff replay: both apply on the next drain
    deliver(fixture, adapter, sub_event("evt_sub_later", customer="c8", sub="sub_later"))
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 1
        assert inbox_replay(inbox_ids=[early.pk]) == 1
        assert inbox_drain() == 1
        early.refresh_from_db()
        assert (early.status, early.attempts, early.last_error) == (InboxStatus.APPLIED, 1, "")
        assert Payment.objects.get().provider_payment_id == "pay_evt_early_payment"
        assert MembershipHistory.objects.filter(event_id__startswith="evt_").count() == 7


def test_a_retry_that_is_due_is_applied_by_the_drain_its_message_starts(sandbox):
    fixture, adapter = sandbox
    deliver(fixture, adapter, payment_event("evt_pay", sub="sub_1"))
    with tenant_context(fixture.tenant):
        event = InboxEvent.objects.get()
        assert inbox_process(inbox_id=event.pk) == InboxStatus.FAILED
    deliver(fixture, adapter, sub_event("evt_sub"))
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 1  # the subscription; the payment's retry is not due yet
        assert inbox_drain(inbox_id=event.pk) == 1  # its retry message: applied
        event.refresh_from_db()
        assert (event.status, event.attempts) == (InboxStatus.APPLIED, 2)


def test_the_same_event_delivered_twice_in_a_burst_applies_once(sandbox):
    fixture, adapter = sandbox
    for payload in [sub_event("evt_dup"), sub_event("evt_other", minutes=1), sub_event("evt_dup")]:
        deliver(fixture, adapter, payload)
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 2  # one row for the redelivery
        assert inbox_drain() == 0
        first = InboxEvent.objects.get(event_id="evt_dup")
        assert inbox_process(inbox_id=first.pk) == InboxStatus.APPLIED  # again: already done
        assert MembershipHistory.objects.filter(event_id="evt_dup").count() == 1
        assert MembershipHistory.objects.filter(event_id="evt_other").count() == 1


@pytest.mark.parametrize("order", [(3, 2, 1, 0), (1, 3, 0, 2), (0, 2, 3, 1)])
def test_shuffled_events_in_one_batch_end_in_the_same_state(sandbox, order):
    fixture, adapter = sandbox
    for index in order:
        deliver(fixture, adapter, SEQUENCE[index])
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 4
        membership = Membership.objects.get(provider="sandbox")
        assert (membership.status, membership.provider_event_at) == ("canceled", T0 + dt.timedelta(minutes=3))
        assert membership.ended_at is not None
        assert set(InboxEvent.objects.values_list("status", flat=True)) == {InboxStatus.APPLIED}


def test_a_same_second_reorder_within_a_batch_keeps_the_later_status(sandbox):
    fixture, adapter = sandbox
    deliver(fixture, adapter, sub_event("evt_updated", status="active"))
    deliver(fixture, adapter, sub_event("evt_created", status="incomplete", type="subscription.created"))
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 2
        assert Membership.objects.get().status == "active"


def test_a_batch_applies_an_event_in_few_statements(sandbox, settings):
    fixture, adapter = sandbox
    customers = 5
    for i in range(customers):  # the first event of each customer creates it and its membership
        deliver(fixture, adapter, sub_event(f"evt_first_{i}", customer=f"c{i}", sub=f"sub_{i}"))
    with tenant_context(fixture.tenant):
        inbox_drain()
    events = 40
    for i in range(events):
        deliver(fixture, adapter, sub_event(f"evt_{i}", customer=f"c{i % customers}", sub=f"sub_{i % customers}",
                                            minutes=1 + i))  # fmt: skip
    with tenant_context(fixture.tenant), CaptureQueriesContext(connection) as queries:
        assert inbox_drain() == events
    # per event: the membership's update; per customer and batch: its lock and its memberships' read;
    # per batch: the advisory lock, the claim, the price, the endpoints, the history rows, the
    # bookkeeping (and the second look after clearing the flag, the test's savepoints, search_path)
    assert len(queries) <= events + 2 * customers + 16, "\n".join(q["sql"][:100] for q in queries)
    assert statuses(fixture.tenant) == {e: InboxStatus.APPLIED for e in statuses(fixture.tenant)}


def test_customers_are_told_once_per_batch(sandbox, monkeypatch, django_capture_on_commit_callbacks):
    from billing.metering.credits_tasks import credits_allowance_for_many_task, credits_allowance_for_task

    fixture, adapter = sandbox
    sent, single, many = [], [], []
    monkeypatch.setattr(credits_allowance_for_task, "delay", lambda external_id: single.append(external_id))
    monkeypatch.setattr(credits_allowance_for_many_task, "delay", lambda ids: many.append(ids))

    def listener(sender, external_id=None, external_ids=None, committed=False, **kwargs):
        sent.append((external_id, external_ids, committed))

    membership_changed.connect(listener)
    try:
        for i in range(6):
            deliver(
                fixture, adapter, sub_event(f"evt_{i}", customer=f"c{i % 3}", sub=f"sub_{i % 3}", minutes=i)
            )
        with tenant_context(fixture.tenant), django_capture_on_commit_callbacks(execute=True):
            assert inbox_drain() == 6
    finally:
        membership_changed.disconnect(listener)
    assert sent == [(None, ["c0", "c1", "c2"], False), (None, ["c0", "c1", "c2"], True)]
    assert single == [] and many == [["c0", "c1", "c2"]]  # one task for the allowances


def test_a_burst_publishes_one_message_until_a_drain_finds_nothing(
    ci_catalog, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(
        "billing.inbox.services.enqueue",
        lambda task, args=(), countdown=None, fallback="": published.append((args, countdown)) or True,
    )
    with tenant_context(ci_catalog.tenant):
        adapter = SandboxProvider(webhook_secret=provider_account_upsert(provider="sandbox").webhook_secret)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(5):
            deliver(ci_catalog, adapter, sub_event(f"evt_{i}", minutes=i))
    assert len(published) == 1  # the first asked for a drain; the others found it due
    with tenant_context(ci_catalog.tenant):
        assert inbox_drain() == 5
    with django_capture_on_commit_callbacks(execute=True):
        deliver(ci_catalog, adapter, sub_event("evt_next", minutes=9))
    assert len(published) == 2  # the drain that found nothing left cleared the flag
    with tenant_context(ci_catalog.tenant):
        event = InboxEvent.objects.get(event_id="evt_next")
        with django_capture_on_commit_callbacks(execute=True):
            event.status = InboxStatus.FAILED
            event.save()
            inbox_replay(inbox_ids=[event.pk])  # the drain is still due: no second message
        assert len(published) == 2
        assert inbox_drain() == 1


@pytest.mark.parametrize("mode", ["drains", "drains and single events"])
def test_racing_drains_apply_each_event_once(live_tenant, mode, monkeypatch):
    # no broker message: only the racers below apply (a test worker may be consuming)
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)

    def setup():
        with tenant_context(live_tenant.tenant):
            return provider_account_upsert(provider="sandbox").webhook_secret

    adapter = SandboxProvider(webhook_secret=committed(setup))
    events = 60

    def send():
        for i in range(events):
            deliver(
                live_tenant,
                adapter,
                sub_event(f"evt_{i}", customer=f"c{i % 7}", sub=f"sub_{i % 7}", minutes=i),
            )

    committed(send)

    def work(worker: int):
        with tenant_context(live_tenant.tenant):
            if mode == "drains" or worker % 2 == 0:
                return inbox_drain()
            for pk in InboxEvent.objects.order_by("-id").values_list("id", flat=True):
                inbox_process(inbox_id=pk)
            return 0

    settled = run_parallel(work, 4)
    if mode == "drains":
        assert sum(settled) == events  # each event claimed by exactly one drain

    def outcome():
        with tenant_context(live_tenant.tenant):
            return (
                list(InboxEvent.objects.order_by().values_list("status", "attempts").distinct()),
                list(
                    MembershipHistory.objects.filter(event_id__startswith="evt_")
                    .order_by("id")
                    .values_list("event_id", flat=True)
                ),
                sorted(Membership.objects.values_list("provider_subscription_id", "provider_event_at")),
            )

    rows, history, memberships = committed(outcome)
    assert rows == [(InboxStatus.APPLIED, 1)]  # each event settled once
    assert len(history) == len(set(history))  # and applied at most once
    if mode == "drains":  # in order: each changed its subscription
        assert history == [f"evt_{i}" for i in range(events)]
    # (a single event applied ahead of older ones makes them stale: they change nothing, as before)
    assert memberships == [
        (f"sub_{s}", T0 + dt.timedelta(minutes=max(range(s, events, 7)))) for s in range(7)
    ]


def _mixed(prefix: str) -> list[dict]:
    """Two customers' subscriptions, a switch of plan (a new subscription replacing the live one),
    payments (a failed one puts the membership past due), a stale event and a cancel, interleaved."""
    c1, c2 = f"{prefix}c1", f"{prefix}c2"

    def sub(n, customer, sub_id, minutes, **kw):
        return sub_event(f"{prefix}e{n}", customer=customer, sub=f"{prefix}{sub_id}", minutes=minutes, **kw)

    def pay(n, kind, customer, sub_id, minutes):
        payload = payment_event(f"{prefix}e{n}", sub=f"{prefix}{sub_id}", customer=customer)
        payload["type"] = kind
        payload["created_at"] = (T0 + dt.timedelta(minutes=minutes)).isoformat()
        return payload

    return [
        sub(1, c1, "s1", 0, status="incomplete", type="subscription.created"),
        sub(2, c2, "s2", 0),
        sub(3, c1, "s1", 1),
        pay(4, "payment.succeeded", c1, "s1", 1),
        sub(5, c2, "s2", 2, price="pro-monthly"),
        pay(6, "payment.failed", c2, "s2", 3),
        sub(7, c2, "s2", 3, status="past_due", price="pro-monthly"),
        sub(8, c1, "s3", 4, price="pro-monthly"),  # c1 switches: s1 is replaced
        sub(9, c1, "s1", 2, status="active"),  # stale: older than what s1 shows
        sub(10, c2, "s2", 5, status="canceled", type="subscription.canceled", price="pro-monthly"),
        sub(11, c1, "s3", 5, cancel_at_period_end=True, price="pro-monthly"),
    ]


def _outcome(prefix: str) -> tuple:
    def strip(value):
        return value.replace(prefix, "") if isinstance(value, str) else value

    memberships = [
        tuple(map(strip, row))
        for row in Membership.objects.filter(customer__external_id__startswith=prefix)
        .order_by("customer__external_id", "provider_subscription_id")
        .values_list(
            "customer__external_id", "provider_subscription_id", "status", "tier__code", "cancel_at_period_end",
            "past_due_since", "ended_at", "provider_event_at",
        )
    ]  # fmt: skip
    history = [
        tuple(map(strip, row))
        for row in MembershipHistory.objects.filter(membership__customer__external_id__startswith=prefix)
        .order_by("id")
        .values_list("membership__provider_subscription_id", "status", "tier__code", "reason", "event_id")
    ]
    payments = sorted(
        tuple(map(strip, row))
        for row in Payment.objects.filter(provider_payment_id__startswith=f"pay_{prefix}").values_list(
            "provider_payment_id", "kind", "amount", "membership__provider_subscription_id"
        )
    )
    inbox = sorted(
        tuple(map(strip, row))
        for row in InboxEvent.objects.filter(event_id__startswith=prefix).values_list("event_id", "status")
    )
    return memberships, history, payments, inbox


def test_a_batch_ends_exactly_as_the_same_events_applied_one_at_a_time(sandbox):
    fixture, adapter = sandbox
    for payload in _mixed("one-"):
        deliver(fixture, adapter, payload)
    with tenant_context(fixture.tenant):
        for pk in InboxEvent.objects.order_by("id").values_list("id", flat=True):
            inbox_process(inbox_id=pk)
        one_at_a_time = _outcome("one-")
    for payload in _mixed("batch-"):
        deliver(fixture, adapter, payload)
    with tenant_context(fixture.tenant):
        assert inbox_drain() == 11
        batched = _outcome("batch-")
    assert batched == one_at_a_time
    memberships, history, payments, inbox = batched
    assert [m[:4] for m in memberships] == [
        ("c1", "s1", "canceled", "team"),
        ("c1", "s3", "active", "pro"),
        ("c2", "s2", "canceled", "pro"),
    ]
    assert len(payments) == 2 and {status for _, status in inbox} == {InboxStatus.APPLIED}
