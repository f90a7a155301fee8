"""One tenant cannot starve the others: a Celery queue per kind of work (provider webhooks in,
deliveries out, housekeeping) with a worker each, a cap on a tenant's webhook endpoints, and at most
WEBHOOK_OUT_TENANT_IN_FLIGHT of a tenant's deliveries in the broker's queue at once."""

import re
import time
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from billing.events.models import Delivery
from billing.events.services import deliveries_admit, deliveries_sweep, delivery_attempt
from billing.inbox.models import InboxEvent, InboxStatus
from billing.providers.sandbox import SandboxProvider
from billing.providers.services import provider_account_upsert
from billing.tiers.catalog import catalog_import
from monetize.celery import app as celery_app
from tests.billing.test_webhooks_in import deliver, sub_event
from tests.billing.test_webhooks_out import register, set_tier
from tests.conftest import CATALOGS, celery_worker
from tests.helpers import committed

ROOT = Path(__file__).resolve().parent.parent.parent
QUEUES = {
    "webhooks.process": "inbox",
    "webhooks.sweep": "inbox",
    "webhooks.deliver": "deliveries",
    "events.sweep": "deliveries",
}


def _queue(task_name: str) -> str:
    return celery_app.amqp.router.route({}, task_name)["queue"].name


def test_each_task_goes_to_its_queue_and_each_queue_has_a_worker():
    celery_app.loader.import_default_modules()  # every app's tasks, whatever ran before this test
    tasks = [name for name in celery_app.tasks if not name.startswith("celery.")]
    assert set(QUEUES) <= set(tasks)
    for name in tasks:
        assert _queue(name) == QUEUES.get(name, "housekeeping"), name
    # the beat jobs are housekeeping too (the sweeps excepted: they re-enqueue their own kind)
    from django.conf import settings

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert _queue(entry["task"]) == QUEUES.get(entry["task"], "housekeeping")
    # the Procfile runs one worker per queue, and `make run` starts each of them
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    consumed = {
        process: re.search(r"--queues (\S+)", command).group(1)
        for process, command in procfile.items()
        if " worker " in command
    }
    assert sorted(consumed.values()) == ["deliveries", "housekeeping", "inbox"]
    honcho = re.search(r"honcho\" -f Procfile start (.*)", (ROOT / "scripts" / "dev.sh").read_text()).group(1)
    assert set(consumed) <= set(honcho.split())


def test_the_endpoint_past_the_cap_is_refused(ci_catalog, settings):
    assert settings.WEBHOOK_ENDPOINTS_MAX == 20
    for i in range(20):
        assert register(ci_catalog, f"https://hooks.example/{i}").status_code == 201
    refused = register(ci_catalog, "https://hooks.example/20")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "endpoint_limit_reached"
    assert refused.json()["error"]["details"] == {"limit": 20}
    listed = ci_catalog.api().get("/api/v1/webhook-endpoints").json()["results"]
    assert len(listed) == 20
    # deleting one frees its place
    ci_catalog.api().delete(f"/api/v1/webhook-endpoints/{listed[0]['id']}")
    assert register(ci_catalog, "https://hooks.example/20").status_code == 201


@pytest.fixture
def enqueued(monkeypatch):
    """(schema, delivery id) of each delivery sent to the broker."""
    from django.db import connection

    sent = []
    monkeypatch.setattr(
        "billing.events.services._enqueue",
        lambda delivery_id, countdown=None: sent.append((connection.schema_name, delivery_id)),
    )
    return sent


def test_a_tenant_has_at_most_n_deliveries_in_the_queue(
    ci_catalog, beta, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUT_TENANT_IN_FLIGHT = 3
    for i in range(6):  # the receivers accept: nothing listens, but attempts are not made here
        register(ci_catalog, f"http://127.0.0.1:9/{i}", event_types=["membership.updated"])
    with tenant_context(beta.tenant):
        catalog_import(text=(CATALOGS / "ci-service.yaml").read_text())
    register(beta, "http://127.0.0.1:9/beta", event_types=["membership.updated"])
    with django_capture_on_commit_callbacks(execute=True):
        set_tier(ci_catalog, "pro")  # six deliveries (one per endpoint)
        set_tier(beta, "pro", customer="b1")
    with tenant_context(ci_catalog.tenant):
        queue = list(Delivery.objects.order_by("id"))
        assert len(queue) == 6
        # the first three are in the broker's queue; the others wait in the table
        assert [pk for schema, pk in enqueued if schema == "alpha"] == [d.pk for d in queue[:3]]
        assert Delivery.objects.filter(queued_at__isnull=False).count() == 3
        assert deliveries_admit() == []  # full
        assert deliveries_sweep() == 0  # nothing lost, nothing due
    with tenant_context(beta.tenant):
        # another tenant's delivery is not behind them
        (theirs,) = Delivery.objects.all()
        assert theirs.queued_at is not None and ("beta", theirs.pk) in enqueued
    with tenant_context(ci_catalog.tenant):
        # when one attempt ends (here: refused, retried later), the next one is admitted
        with django_capture_on_commit_callbacks(execute=True):
            assert delivery_attempt(delivery_id=queue[0].pk) == "failed"
        assert enqueued[-1] == ("alpha", queue[3].pk)
        assert Delivery.objects.filter(status="pending", queued_at__isnull=False).count() == 3


def test_a_waiting_delivery_takes_no_place(
    ci_catalog, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OUT_TENANT_IN_FLIGHT = 1
    register(ci_catalog, "http://127.0.0.1:9/", event_types=["membership.updated"])
    with django_capture_on_commit_callbacks(execute=True):
        set_tier(ci_catalog, "team")
        set_tier(ci_catalog, "pro")  # same customer, same endpoint: in order
    with tenant_context(ci_catalog.tenant):
        first, second, *_ = Delivery.objects.order_by("id")
        assert enqueued == [("alpha", first.pk)]
        with django_capture_on_commit_callbacks(execute=True):
            assert delivery_attempt(delivery_id=first.pk) == "failed"
        # the first's retry is scheduled; the second is behind it (same customer): not admitted
        assert enqueued == [("alpha", first.pk), ("alpha", first.pk)]
        assert deliveries_admit() == []


@pytest.mark.worker
def test_a_tenants_delivery_backlog_does_not_delay_another_tenants_inbox(
    live_tenant, alpha, tmp_path, private_broker
):
    """A real worker on the inbox queue applies a provider event at once while another tenant has
    thousands of deliveries queued (in one shared FIFO queue they were ahead of it). On a private
    broker: the session's worker (every queue) must not eat the backlog meanwhile."""
    from billing.events.tasks import deliver as deliver_task

    backlog = 3000
    with tenant_context(alpha.tenant), celery_app.producer_or_acquire() as producer:
        for _ in range(backlog):
            deliver_task.apply_async(args=[0], producer=producer)
    redis = celery_app.connection_for_write().default_channel.client
    try:
        assert redis.llen("deliveries") >= backlog * 0.9

        def setup():
            with tenant_context(live_tenant.tenant):
                return provider_account_upsert(provider="sandbox").webhook_secret

        adapter = SandboxProvider(webhook_secret=committed(setup))
        with celery_worker(
            queues="inbox", name="inbox", log=tmp_path / "inbox.log", broker=private_broker.url
        ):
            started = time.monotonic()
            status = committed(lambda: deliver(live_tenant, adapter, sub_event("evt_fair")).status_code)
            assert status == 200

            def applied():
                with tenant_context(live_tenant.tenant):
                    return InboxEvent.objects.filter(event_id="evt_fair", status=InboxStatus.APPLIED).exists()

            while not committed(applied) and time.monotonic() - started < 15:
                time.sleep(0.05)
            assert committed(applied), (tmp_path / "inbox.log").read_text()[-2000:]
            # applied while most of the other tenant's deliveries were still waiting
            assert redis.llen("deliveries") > backlog / 2
    finally:
        redis.delete("deliveries")
