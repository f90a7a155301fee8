"""Deleting a webhook endpoint while one of its deliveries is attempted (issue 10, item 19)."""

import threading
import time

import httpx
from django_tenants.utils import tenant_context

from billing.events.models import Delivery, DeliveryAttempt, WebhookEndpoint
from billing.events.services import delivery_attempt, endpoint_create, event_publish
from tests.billing.test_webhooks_out import deliveries, register, set_tier
from tests.helpers import committed, run_parallel


class _DeletingClient:
    """An HTTP client whose request deletes the endpoint (through the API) while it is in flight."""

    def __init__(self, fixture, endpoint_id: int):
        self.fixture, self.endpoint_id = fixture, endpoint_id

    def post(self, url, **kwargs):
        response = self.fixture.api().delete(f"/api/v1/webhook-endpoints/{self.endpoint_id}")
        assert response.status_code == 204, response.content
        return httpx.Response(200)


def test_an_endpoint_deleted_during_the_http_call_ends_the_attempt_quietly(ci_catalog):
    register(ci_catalog, "http://127.0.0.1:1/hooks", event_types=["membership.updated"])
    set_tier(ci_catalog, "pro")
    (delivery,) = deliveries(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        client = _DeletingClient(ci_catalog, delivery.endpoint_id)
        assert delivery_attempt(delivery_id=delivery.pk, client=client) == "deleted"
        assert not WebhookEndpoint.objects.exists() and not Delivery.objects.exists()


def test_deleting_a_missing_endpoint_is_a_404(alpha):
    response = alpha.api().delete("/api/v1/webhook-endpoints/999999")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_delete_while_a_delivery_commits_waits_for_it(live_tenant, monkeypatch):
    """The delivery has inserted its attempt row and not committed when the delete starts: the
    delete must wait for it (before: the cascade missed the new attempt row, and the delete failed
    at commit on the foreign key, a 500)."""
    # the delivery must not reach the broker: the session's real worker (started by earlier tests)
    # would attempt it first, and this test's attempt would find it already done
    monkeypatch.setattr("billing.events.services._enqueue", lambda delivery_id, countdown=None: None)

    def seed():
        with tenant_context(live_tenant.tenant):
            endpoint, _ = endpoint_create(url="http://127.0.0.1:1/hooks")
            event_publish(type="membership.updated", payload={"x": 1}, customer="c1", endpoints=[endpoint])
            return endpoint.pk, Delivery.objects.get(endpoint=endpoint).pk

    endpoint_id, delivery_id = committed(seed)
    inserted = threading.Event()
    create = DeliveryAttempt.objects.create

    def slow_create(**kwargs):
        row = create(**kwargs)
        inserted.set()
        time.sleep(1.0)  # the delete starts meanwhile
        return row

    monkeypatch.setattr(DeliveryAttempt.objects, "create", slow_create)

    def work(i: int):
        if i == 0:
            with tenant_context(live_tenant.tenant):
                return delivery_attempt(delivery_id=delivery_id, client=_Ok())
        assert inserted.wait(10)
        return live_tenant.api().delete(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code

    status, deleted = run_parallel(work, 2)
    assert status == "succeeded" and deleted == 204

    def left():
        with tenant_context(live_tenant.tenant):
            return WebhookEndpoint.objects.filter(pk=endpoint_id).count(), DeliveryAttempt.objects.count()

    assert committed(left) == (0, 0)


class _Ok:
    def post(self, url, **kwargs):
        return httpx.Response(200)
