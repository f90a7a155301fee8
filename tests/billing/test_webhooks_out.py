"""Webhooks out: signed per Standard Webhooks, retried, in order per customer, against a local
receiver that fails first and then accepts."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_tenants.utils import tenant_context
from standardwebhooks.webhooks import Webhook

from billing.events.models import Delivery, WebhookEndpoint
from billing.events.services import delivery_attempt


class Receiver:
    """A local HTTP endpoint answering with the given status codes in turn (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def register(fixture, url, **body):
    return fixture.api().post(
        "/api/v1/webhook-endpoints",
        {"url": url, **body},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"ep-{url}",
    )


def set_tier(fixture, tier, customer="c1"):
    fixture.api().post(
        "/api/v1/customers", {"external_id": customer, "tier": tier}, content_type="application/json"
    )


def deliveries(fixture, **filters):
    with tenant_context(fixture.tenant):
        return list(Delivery.objects.filter(**filters).select_related("event").order_by("id"))


def attempt(fixture, delivery):
    with tenant_context(fixture.tenant):
        return delivery_attempt(delivery_id=delivery.pk)


def test_register_shows_the_secret_once(ci_catalog, receiver):
    first = register(ci_catalog, receiver.url)
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    replay = register(ci_catalog, receiver.url)
    assert replay.json()["secret"] is None and replay.json()["id"] == first.json()["id"]
    listed = ci_catalog.api().get("/api/v1/webhook-endpoints").json()["results"]
    assert [e["url"] for e in listed] == [receiver.url] and "secret" not in listed[0]
    bad = ci_catalog.api().post(
        "/api/v1/webhook-endpoints", {"url": "ftp://x"}, content_type="application/json"
    )
    assert bad.status_code == 400


def test_signed_delivery_fails_first_then_is_retried_and_accepted(ci_catalog, receiver):
    secret = register(ci_catalog, receiver.url, event_types=["membership.updated"]).json()["secret"]
    receiver.statuses = [500]
    set_tier(ci_catalog, "pro")
    (delivery,) = deliveries(ci_catalog)
    assert attempt(ci_catalog, delivery) == "failed"
    (delivery,) = deliveries(ci_catalog)
    assert (
        delivery.attempts == 1 and delivery.last_status_code == 500 and delivery.next_attempt_at is not None
    )
    assert attempt(ci_catalog, delivery) == "succeeded"
    assert attempt(ci_catalog, delivery) == "succeeded"  # twice is fine: no second POST
    assert len(receiver.requests) == 2
    request = receiver.requests[-1]
    payload = Webhook(secret).verify(request["body"], request["headers"])  # the receiver's own check
    assert payload["type"] == "membership.updated" and payload["data"]["tier"] == "pro"
    assert request["headers"]["webhook-id"] == delivery.event_id
    log = (
        ci_catalog.api().get(f"/api/v1/webhook-endpoints/{delivery.endpoint_id}/deliveries").json()["results"]
    )
    assert log[0]["status"] == "succeeded" and log[0]["attempts"] == 2


def test_one_customers_events_arrive_in_order(ci_catalog, receiver):
    register(ci_catalog, receiver.url, event_types=["membership.updated"])
    set_tier(ci_catalog, "team")
    set_tier(ci_catalog, "pro")  # ends the team membership, starts pro: more events, same customer
    queue = deliveries(ci_catalog)
    assert len(queue) >= 2
    receiver.statuses = [503]
    assert attempt(ci_catalog, queue[-1]) == "waiting"  # an older one is not through
    assert attempt(ci_catalog, queue[0]) == "failed"
    assert attempt(ci_catalog, queue[1]) == "waiting"
    for delivery in queue:
        attempt(ci_catalog, delivery)
    assert all(d.status == "succeeded" for d in deliveries(ci_catalog))
    # the first request was the refused attempt; then every delivery once, oldest first
    sent = [json.loads(r["body"])["data"] for r in receiver.requests[1:]]
    assert [(d["tier"], d["status"]) for d in sent] == [
        (d.event.payload["tier"], d.event.payload["status"]) for d in queue
    ]


def test_event_type_filter(ci_catalog, receiver):
    register(ci_catalog, receiver.url, event_types=["entitlements.changed"])
    set_tier(ci_catalog, "pro")
    assert {d.event.type for d in deliveries(ci_catalog)} == {"entitlements.changed"}


def test_repeated_failures_kill_the_delivery_and_disable_the_endpoint(ci_catalog, receiver, settings):
    settings.WEBHOOK_OUT_DISABLE_AFTER = 3
    endpoint_id = register(ci_catalog, receiver.url, event_types=["membership.updated"]).json()["id"]
    receiver.statuses = [500] * 10
    set_tier(ci_catalog, "pro")
    (delivery,) = deliveries(ci_catalog)
    for _ in range(3):
        attempt(ci_catalog, delivery)
    with tenant_context(ci_catalog.tenant):
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        assert endpoint.is_active is False and "3 failed attempts" in endpoint.disabled_reason
    assert attempt(ci_catalog, delivery) == "failed"  # a disabled endpoint is not called
    assert len(receiver.requests) == 3
    with tenant_context(ci_catalog.tenant):
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(is_active=True, consecutive_failures=0)
    resent = ci_catalog.api().post(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery.pk}/resend")
    assert resent.status_code == 202 and resent.json()["attempts"] == 0


def test_unreachable_endpoint_is_a_failure_not_a_crash(ci_catalog):
    register(ci_catalog, "http://127.0.0.1:1/nothing", event_types=["membership.updated"])
    set_tier(ci_catalog, "pro")
    (delivery,) = deliveries(ci_catalog)
    assert attempt(ci_catalog, delivery) == "failed"
    (delivery,) = deliveries(ci_catalog)
    assert delivery.last_status_code is None and "ConnectError" in delivery.last_error


def test_frozen_broker_costs_a_committed_tier_change_seconds_not_a_500(
    ci_catalog, receiver, private_broker, django_capture_on_commit_callbacks
):
    from kernel.metrics import ENQUEUE_FAILURES

    register(ci_catalog, receiver.url)
    set_tier(ci_catalog, "community")
    failures = ENQUEUE_FAILURES.labels(task="webhooks.deliver")._value.get()

    # given the broker frozen (SIGSTOP: connections hang, nothing is refused)
    private_broker.stop()
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = ci_catalog.api().post(
            "/api/v1/customers", {"external_id": "c1", "tier": "pro"}, content_type="application/json"
        )
    elapsed = time.monotonic() - started

    # then the write answers its real outcome within the publish timeouts
    assert response.status_code == 200 and response.json()["tier"] == "pro"
    assert elapsed < 8, elapsed
    # and the deliveries wait, pending, for events.sweep; the failed publishes were counted
    assert {d.status for d in deliveries(ci_catalog, event__type="membership.updated")} == {"pending"}
    assert ENQUEUE_FAILURES.labels(task="webhooks.deliver")._value.get() > failures


def test_a_disabled_endpoint_holds_its_deliveries_and_enabling_admits_them(
    in_alpha, django_capture_on_commit_callbacks, monkeypatch
):
    from billing.events import services

    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda delivery_id, countdown=None: sent.append(delivery_id))
    endpoint, _ = services.endpoint_create(url="https://hooks.example.com/in")
    with django_capture_on_commit_callbacks(execute=False):  # published, not yet admitted
        event = services.event_publish(type="payment.succeeded", payload={"amount": 1}, customer="c1")
    assert services.endpoint_set_active(endpoint_id=endpoint.pk, active=False).is_active is False
    assert services.deliveries_admit() == [] and sent == []  # a disabled endpoint's delivery waits
    assert services.event_publish(type="payment.succeeded", payload={}, customer="c1") is None  # no new ones
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=9)
    with django_capture_on_commit_callbacks(execute=True):
        enabled = services.endpoint_set_active(endpoint_id=endpoint.pk, active=True)
    assert (enabled.is_active, enabled.consecutive_failures, enabled.disabled_reason) == (True, 0, "")
    assert sent == [Delivery.objects.get(event=event).pk]
    with django_capture_on_commit_callbacks(execute=True):  # already enabled: nothing happens again
        services.endpoint_set_active(endpoint_id=endpoint.pk, active=True)
    assert len(sent) == 1
    assert services.endpoint_set_active(endpoint_id=endpoint.pk + 1000, active=True) is None
