"""The meter sync: per customer x meter x period deltas reported to the provider exactly once, a
crashed or partial run resumed without double-sending, late usage forwarded to the current period.
Providers are real adapters with only their network edge faked (a stripe.HTTPClient, an
httpx.MockTransport); the sandbox records reports in our own table."""

import datetime as dt
import io
import json
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.memberships.models import Customer, Membership
from billing.metering import sync as sync_module
from billing.metering.selectors import month_start
from billing.metering.sync import SyncAlreadyRunning, meter_sync_run, usage_unsynced
from billing.metering.sync import run as sync_run
from billing.metering.sync_models import MeterSyncReport, MeterSyncRun, MeterSyncState, SandboxUsageReport
from billing.metering.tasks import meter_sync_task
from billing.providers.polar import PolarProvider
from billing.providers.services import provider_account_upsert
from billing.providers.stripe import StripeProvider
from billing.tiers.models import Price
from tests.billing.test_entitlements import make_customer
from tests.billing.test_metering import ev as build_event
from tests.billing.test_metering import meter, post


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.METER_SYNC_BACKOFF = 0


@pytest.fixture
def shop(ci_catalog):
    make_customer(ci_catalog, "c1")
    make_customer(ci_catalog, "c2")
    meter(ci_catalog, code="minutes", event_type="job.done", aggregation="sum", value_property="minutes")
    meter(ci_catalog, code="jobs", event_type="job.done", aggregation="count")
    return ci_catalog


def ev(event_id, **fields):
    """A usage event of this file's meters (the CI catalog's own meters take build.finished)."""
    return build_event(event_id, type="job.done", **fields)


def ingest(fixture, *events):
    response = post(fixture, {"events": list(events)})
    assert response.status_code == 202 and response.json()["inserted"] == len(events), response.content


def run(fixture, **kwargs) -> MeterSyncRun:
    with tenant_context(fixture.tenant):
        return meter_sync_run(**kwargs)


def sandbox_totals(fixture) -> dict:
    with tenant_context(fixture.tenant):
        totals = defaultdict(int)
        for row in SandboxUsageReport.objects.all():
            totals[(row.customer, row.meter)] += row.quantity
        return dict(totals)


def test_sandbox_sync_reports_each_customers_period_usage_once(shop):
    # given
    ingest(shop, ev("a1", properties={"minutes": 5}), ev("a2", properties={"minutes": 7.5}),
           ev("b1", customer="c2", properties={"minutes": 4}))  # fmt: skip
    # when
    first = run(shop)
    # then: whole units (12.5 minutes -> 12), one report per customer and meter
    assert sandbox_totals(shop) == {("c1", "minutes"): 12, ("c1", "jobs"): 2, ("c2", "minutes"): 4,
                                    ("c2", "jobs"): 1}  # fmt: skip
    assert (first.status, first.customers, first.reports, first.units, first.failures) == (
        "succeeded",
        2,
        4,
        19,
        0,
    )
    assert first.finished_at >= first.started_at
    with tenant_context(shop.tenant):
        start = month_start(timezone.now())
        assert set(SandboxUsageReport.objects.values_list("period_start", flat=True)) == {start}
        state = MeterSyncState.objects.get(
            customer__external_id="c1", meter__code="minutes", period_start=start
        )
        assert (state.usage, state.covered, state.reported, state.closed_at) == (12.5, 12, 12, None)

    # a second run sends nothing
    second = run(shop)
    assert (second.status, second.reports, second.units) == ("succeeded", 0, 0)
    with tenant_context(shop.tenant):
        assert SandboxUsageReport.objects.count() == 4

    # new events: only the delta (the carried half minute makes a whole one)
    ingest(shop, ev("a3", properties={"minutes": 0.5}))
    third = run(shop)
    assert (third.reports, third.units) == (2, 2)
    assert sandbox_totals(shop)[("c1", "minutes")] == 13
    assert sandbox_totals(shop)[("c1", "jobs")] == 3
    with tenant_context(shop.tenant):
        latest = SandboxUsageReport.objects.filter(customer="c1", meter="minutes").order_by("-pk").first()
        assert latest.quantity == 1


def test_a_crash_after_the_provider_accepted_resends_the_same_report_and_records_it_once(shop, monkeypatch):
    # given: the process dies between the provider's acceptance and our commit, for c2's first report
    ingest(shop, ev("a1", properties={"minutes": 3}), ev("b1", customer="c2", properties={"minutes": 4}))
    real_apply = sync_run._apply
    crashed = []

    def crash_once(*, report, ref):
        if report.customer_id == Customer.objects.get(external_id="c2").pk and not crashed:
            crashed.append(report.identifier)
            raise RuntimeError("worker killed")
        return real_apply(report=report, ref=ref)

    monkeypatch.setattr(sync_run, "_apply", crash_once)
    with pytest.raises(RuntimeError):
        run(shop)
    with tenant_context(shop.tenant):
        failed = MeterSyncRun.objects.get()
        assert failed.status == "failed" and "worker killed" in failed.error
        # the crashed report and c2's next one (planned in the same transaction) wait for the next run
        pending = MeterSyncReport.objects.filter(status="pending")
        assert pending.count() == 2 and crashed[0] in {r.identifier for r in pending}
        assert SandboxUsageReport.objects.filter(identifier=crashed[0]).count() == 1  # the provider has it

    # more usage arrives before the next run
    ingest(shop, ev("b2", customer="c2", properties={"minutes": 6}))
    # when
    resumed = run(shop)
    # then: the pending report went again with its identifier (recorded once), then only the new delta
    assert resumed.status == "succeeded"
    assert sandbox_totals(shop) == {("c1", "minutes"): 3, ("c1", "jobs"): 1, ("c2", "minutes"): 10,
                                    ("c2", "jobs"): 2}  # fmt: skip
    with tenant_context(shop.tenant):
        assert SandboxUsageReport.objects.filter(identifier=crashed[0]).count() == 1
        assert not MeterSyncReport.objects.filter(status="pending").exists()
        for state in MeterSyncState.objects.all():
            assert state.reported == state.covered == int(state.usage)


# --- Stripe: meter events through the real SDK --------------------------------------------------


class FakeStripeMeters(stripe.HTTPClient):
    """Stripe's meter events API: records events, de-duplicated by `identifier` as Stripe does.
    `lose_for`: customers whose events Stripe records but whose answer never comes back."""

    name = "fake"

    def __init__(self):
        super().__init__()
        self.calls = []
        self.events: dict[str, dict] = {}
        self.lose_for: set[str] = set()
        self.down_for: set[str] = set()

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        form = {k: v[0] for k, v in parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or "")).items()}  # fmt: skip
        self.calls.append({"path": path, "form": form, "headers": dict(headers or {})})
        if path != "/v1/billing/meter_events":
            return json.dumps({"error": {"type": "invalid_request_error", "message": "no route"}}), 404, {}
        customer = form["payload[stripe_customer_id]"]
        if customer in self.down_for:
            raise stripe.APIConnectionError("connection refused")
        self.events.setdefault(form["identifier"], form)
        if customer in self.lose_for:
            raise stripe.APIConnectionError("connection reset by peer")
        event = {"object": "billing.meter_event", "event_name": form["event_name"], "identifier": form["identifier"],
                 "payload": {"stripe_customer_id": customer, "value": form["payload[value]"]},
                 "timestamp": int(form["timestamp"]), "created": int(form["timestamp"]), "livemode": False}  # fmt: skip
        return json.dumps(event), 200, {}

    def close(self):
        pass

    def totals(self) -> dict:
        totals = defaultdict(int)
        for event in self.events.values():
            totals[(event["payload[stripe_customer_id]"], event["event_name"])] += int(
                event["payload[value]"]
            )
        return dict(totals)


def subscribe(fixture, external_id: str, provider: str, provider_customer_id: str, **extra) -> Membership:
    with tenant_context(fixture.tenant):
        price = Price.objects.get(code="team-monthly")
        return Membership.objects.create(
            customer=Customer.objects.get(external_id=external_id), tier=price.tier, price=price, status="active",
            provider=provider, provider_subscription_id=f"sub_{external_id}", provider_customer_id=provider_customer_id,
            started_at=timezone.now() - dt.timedelta(days=3), **extra,
        )  # fmt: skip


@pytest.fixture
def stripe_shop(shop, monkeypatch):
    fake = FakeStripeMeters()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    with tenant_context(shop.tenant):
        provider_account_upsert(provider="stripe", credentials={"api_key": "sk_test_123"}, make_default=True)
    subscribe(shop, "c1", "stripe", "cus_1")
    subscribe(shop, "c2", "stripe", "cus_2")
    return shop, fake


def test_stripe_meter_events_carry_the_identifier_and_the_stripe_customer(stripe_shop):
    shop, fake = stripe_shop
    ingest(shop, ev("a1", properties={"minutes": 12}))
    done = run(shop)
    assert (done.status, done.reports) == ("succeeded", 2)
    sent = {call["form"]["event_name"]: call for call in fake.calls}
    minutes = sent["minutes"]
    assert minutes["form"]["payload[stripe_customer_id]"] == "cus_1"
    assert minutes["form"]["payload[value]"] == "12"
    with tenant_context(shop.tenant):
        report = MeterSyncReport.objects.get(meter__code="minutes")
    assert minutes["form"]["identifier"] == report.identifier == minutes["headers"]["Idempotency-Key"]
    assert report.status == "sent" and report.provider == "stripe"
    assert abs(int(minutes["form"]["timestamp"]) - timezone.now().timestamp()) < 60
    assert fake.totals() == {("cus_1", "minutes"): 12, ("cus_1", "jobs"): 1}


def test_a_provider_down_for_one_customer_is_a_partial_run_and_the_next_run_sends_nothing_twice(stripe_shop):
    shop, fake = stripe_shop
    ingest(shop, ev("a1", properties={"minutes": 5}), ev("b1", customer="c2", properties={"minutes": 7}))
    # Stripe records c2's events but the answers are lost (connection reset) on every try
    fake.lose_for = {"cus_2"}
    first = run(shop)
    assert (first.status, first.reports, first.failures) == ("partial", 2, 2)
    assert {e["customer"] for e in first.errors} == {"c2"}
    assert {e["code"] for e in first.errors} == {"provider_unavailable"}
    tries = [c for c in fake.calls if c["form"]["payload[stripe_customer_id]"] == "cus_2"]
    assert len(tries) == 2 * 3  # two meters, three tries each, with one identifier per report
    assert len({c["form"]["identifier"] for c in tries}) == 2
    with tenant_context(shop.tenant):
        assert MeterSyncReport.objects.filter(status="pending").count() == 2
        assert {r["kind"] for r in usage_unsynced()} == {"pending"}  # visible as never confirmed

    # c2 buys more meanwhile; Stripe answers again
    ingest(shop, ev("b2", customer="c2", properties={"minutes": 1}))
    fake.lose_for = set()
    second = run(shop)
    assert (second.status, second.failures) == ("succeeded", 0)
    assert fake.totals() == {("cus_1", "minutes"): 5, ("cus_1", "jobs"): 1, ("cus_2", "minutes"): 8,
                             ("cus_2", "jobs"): 2}  # fmt: skip
    assert run(shop).reports == 0
    with tenant_context(shop.tenant):
        assert usage_unsynced() == []


def test_a_provider_refusal_stops_only_that_customer_and_stays_visible(stripe_shop):
    shop, fake = stripe_shop
    with tenant_context(shop.tenant):
        Membership.objects.filter(customer__external_id="c2").update(provider_customer_id="")
    ingest(shop, ev("a1", properties={"minutes": 5}), ev("b1", customer="c2", properties={"minutes": 7}))
    done = run(shop)
    assert (done.status, done.reports, done.failures) == ("partial", 2, 2)
    assert {e["code"] for e in done.errors} == {"no_provider_customer"}
    assert fake.totals() == {("cus_1", "minutes"): 5, ("cus_1", "jobs"): 1}
    with tenant_context(shop.tenant):
        assert MeterSyncReport.objects.filter(status="refused").count() == 2
        unsynced = usage_unsynced()
    assert {(r["customer"], r["meter"], r["quantity"]) for r in unsynced} == {
        ("c2", "minutes", 7),
        ("c2", "jobs", 1),
    }


def test_the_stripe_network_down_is_retried_then_left_for_the_next_run(stripe_shop):
    shop, fake = stripe_shop
    ingest(shop, ev("b1", customer="c2", properties={"minutes": 2}))
    fake.down_for = {"cus_2"}
    assert run(shop).status == "partial"
    assert fake.events == {}
    fake.down_for = set()
    assert run(shop).status == "succeeded"
    assert fake.totals() == {("cus_2", "minutes"): 2, ("cus_2", "jobs"): 1}


# --- Polar: event ingestion through polar-sdk ---------------------------------------------------


def test_polar_ingests_one_event_per_report_with_our_identifier_as_external_id(shop, monkeypatch):
    seen = []
    ingested: dict[str, dict] = {}

    def polar(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.method, request.url.path, body))
        duplicates = sum(e["external_id"] in ingested for e in body["events"])
        for event in body["events"]:
            ingested.setdefault(event["external_id"], event)
        return httpx.Response(
            200, json={"inserted": len(body["events"]) - duplicates, "duplicates": duplicates}
        )

    monkeypatch.setattr(PolarProvider, "http_transport", httpx.MockTransport(polar))
    with tenant_context(shop.tenant):
        provider_account_upsert(
            provider="polar", credentials={"access_token": "polar_oat_x"}, make_default=True
        )
    subscribe(shop, "c1", "polar", "pc_1")
    ingest(shop, ev("a1", properties={"minutes": 9}))
    done = run(shop)
    assert (done.status, done.reports, done.units) == ("succeeded", 2, 10)
    assert {(m, p) for m, p, _ in seen} == {("POST", "/v1/events/ingest")}
    events = {body["events"][0]["name"]: body["events"][0] for _, _, body in seen}
    with tenant_context(shop.tenant):
        report = MeterSyncReport.objects.get(meter__code="minutes")
    assert events["minutes"]["external_customer_id"] == "c1"
    assert events["minutes"]["external_id"] == report.identifier
    assert events["minutes"]["metadata"]["value"] == 9
    assert run(shop).reports == 0 and len(seen) == 2


# --- late events --------------------------------------------------------------------------------


def test_late_usage_of_a_closed_period_is_reported_in_the_current_period(shop):
    this_month = month_start(timezone.now())
    last_month = month_start(this_month - dt.timedelta(days=1))
    hours_before = (timezone.now() - this_month).total_seconds() / 3600
    ingest(shop, ev("old1", hours_ago=hours_before + 3, properties={"minutes": 10}))
    # a run during last month reports it in last month
    during = run(shop, now=this_month - dt.timedelta(hours=1))
    assert during.units == 11
    # the first run after its end closes it (nothing new), and this month has nothing yet
    assert run(shop).reports == 0
    with tenant_context(shop.tenant):
        old = MeterSyncState.objects.get(meter__code="minutes", period_start=last_month)
        assert old.closed_at is not None and old.period_end == this_month
    # when: a late event of last month arrives, and one of this month
    ingest(shop, ev("late1", hours_ago=hours_before + 2, properties={"minutes": 4}),
           ev("now1", properties={"minutes": 1}))  # fmt: skip
    late = run(shop)
    # then: one report in this month carries both (4 late + 1 current); last month is covered, not re-opened
    with tenant_context(shop.tenant):
        report = MeterSyncReport.objects.filter(meter__code="minutes").latest("pk")
        assert (report.quantity, report.state.period_start) == (5, this_month)
        old.refresh_from_db()
        current = MeterSyncState.objects.get(meter__code="minutes", period_start=this_month)
        assert (old.covered, old.reported) == (14, 10)
        assert (current.covered, current.reported) == (1, 5)
        latest = SandboxUsageReport.objects.filter(meter="minutes").latest("pk")
        assert (latest.quantity, latest.period_start) == (5, this_month)
    assert late.units == 5 + 2  # and two jobs
    assert sandbox_totals(shop)[("c1", "minutes")] == 15
    assert run(shop).reports == 0


def test_usage_from_before_the_first_sync_is_reported_not_dropped(shop):
    this_month = month_start(timezone.now())
    hours_before = (timezone.now() - this_month).total_seconds() / 3600
    ingest(shop, ev("older", hours_ago=hours_before + 24 * 40, properties={"minutes": 6}))
    with tenant_context(shop.tenant):
        assert {(r["meter"], r["quantity"], r["kind"]) for r in usage_unsynced()} == {("minutes", 6, "late"),
                                                                                     ("jobs", 1, "late")}  # fmt: skip
    done = run(shop)
    assert done.units == 7
    with tenant_context(shop.tenant):
        assert SandboxUsageReport.objects.get(meter="minutes").period_start == this_month
        assert usage_unsynced() == []


def test_a_new_period_cuts_the_previous_one_at_its_start(shop):
    # given: c1 was on the calendar month and subscribes now; its usage before is in the old period
    ingest(shop, ev("a1", hours_ago=2, properties={"minutes": 3}))
    run(shop)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    subscribe(shop, "c1", "sandbox", "", current_period_start=hour - dt.timedelta(hours=1),
              current_period_end=hour + dt.timedelta(days=30))  # fmt: skip
    ingest(shop, ev("a2", properties={"minutes": 5}))
    run(shop)
    # then: each event is reported once, in the period it belongs to
    assert sandbox_totals(shop)[("c1", "minutes")] == 8
    with tenant_context(shop.tenant):
        periods = list(MeterSyncState.objects.filter(meter__code="minutes").order_by("period_start"))
        assert [p.period_end for p in periods[:-1]] == [p.period_start for p in periods[1:]]
        for state in periods:
            assert state.covered == int(state.usage)


# --- running it -----------------------------------------------------------------------------------


def test_the_command_shows_progress_and_the_run_summary(shop):
    ingest(shop, ev("a1", properties={"minutes": 2}))
    out = io.StringIO()
    call_command("meter_sync", tenant="alpha", stdout=out)
    text = out.getvalue()
    assert "2/2 customers" in text and "[" + "#" * 30 + "]" in text
    assert "meter sync succeeded: 2 customers, 2 reports, 3 units, 0 failures" in text
    ingest(shop, ev("a2", properties={"minutes": 2}))
    listing = io.StringIO()
    call_command("meter_sync", tenant="alpha", unsynced=True, stdout=listing)
    assert "c1 minutes" in listing.getvalue() and "2 unsynced deltas" in listing.getvalue()
    with pytest.raises(CommandError, match="No tenant"):
        call_command("meter_sync", tenant="nope", stdout=io.StringIO())


def test_the_nightly_beat_task_runs_the_sync_in_the_tenant(shop):
    assert (
        django_settings.CELERY_BEAT_SCHEDULE["meter-sync"]["task"]
        == meter_sync_task.name
        == "metering.meter_sync"
    )
    assert "tenant_schemas" not in django_settings.CELERY_BEAT_SCHEDULE["meter-sync"]  # every tenant
    ingest(shop, ev("a1", properties={"minutes": 2}))
    with tenant_context(shop.tenant):
        result = meter_sync_task.apply().get()
        assert result["status"] == "succeeded" and result["reports"] == 2
        assert MeterSyncRun.objects.get(pk=result["run"]).trigger == "beat"
        assert meter_sync_task.apply().get()["reports"] == 0


def test_a_second_run_while_one_holds_the_tenant_is_refused(shop):
    with tenant_context(shop.tenant):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s, hashtext(%s))",
                [sync_module.SYNC_LOCK_CLASS, connection.schema_name],
            )
        try:
            from tests.helpers import committed

            def other():
                with tenant_context(shop.tenant):
                    try:
                        meter_sync_run()
                    except SyncAlreadyRunning as exc:
                        return exc.code

            assert committed(other) == "meter_sync_running"
        finally:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                    [sync_module.SYNC_LOCK_CLASS, connection.schema_name],
                )


def test_the_batched_usage_read_matches_period_usage_for_every_aggregation(shop):
    from billing.metering.models import Meter
    from billing.metering.selectors import period_usage, period_usage_many

    for code, aggregation in [("peak", "max"), ("low", "min"), ("last", "latest"), ("who", "unique_count")]:
        meter(shop, code=code, event_type="job.done", aggregation=aggregation, value_property="minutes")
    ingest(shop, ev("m1", properties={"minutes": 3}), ev("m2", hours_ago=1, properties={"minutes": 9}),
           ev("m3", customer="c2", properties={"minutes": 2.5}), ev("m4", hours_ago=2, properties={"minutes": 3}))  # fmt: skip
    with tenant_context(shop.tenant):
        meters = list(Meter.objects.all())
        start, end = timezone.now() - dt.timedelta(days=1), timezone.now() + dt.timedelta(hours=1)
        many = period_usage_many(customers=["c1", "c2"], meters=meters, start=start, end=end)
        for customer in ("c1", "c2"):
            one = period_usage(customer=customer, meters=meters, start=start, end=end)
            assert {
                m.pk: many.get((customer, m.pk), one[m.pk] if not one[m.pk] else None) for m in meters
            } == one
        assert many[("c1", Meter.objects.get(code="who").pk)] == 2


def test_unsynced_usage_is_visible_in_the_api_until_reported(shop):
    ingest(shop, ev("u1", properties={"minutes": 3}), ev("u2", customer="c2", properties={"minutes": 2}))
    body = shop.api().get("/api/v1/usage/unsynced").json()["results"]
    assert sorted((r["customer"], r["meter"], r["quantity"]) for r in body) == [
        ("c1", "jobs", 1), ("c1", "minutes", 3), ("c2", "jobs", 1), ("c2", "minutes", 2),
    ]  # fmt: skip
    one = shop.api().get("/api/v1/usage/unsynced?customer=c2").json()["results"]
    assert {r["customer"] for r in one} == {"c2"}
    assert shop.api().get("/api/v1/usage/unsynced?customer=ghost").status_code == 404
    run(shop)
    assert shop.api().get("/api/v1/usage/unsynced").json()["results"] == []


@pytest.mark.worker
def test_the_nightly_sync_runs_in_a_real_worker_in_the_tenants_schema(live_tenant, worker):
    """Beat's task, sent in the tenant's context, runs in a real Celery worker on that tenant's schema."""
    import time

    from billing.metering.ingest import events_ingest
    from billing.metering.tasks import meter_sync_task
    from tests.helpers import committed

    def setup():
        with tenant_context(live_tenant.tenant):
            events_ingest(events=[{"id": f"w{i}", "customer": "c1", "type": "build.finished",
                                   "timestamp": timezone.now().isoformat(), "properties": {"minutes": 2}}
                                  for i in range(3)])  # fmt: skip
            meter_sync_task.delay()

    committed(setup)

    def reported():
        with tenant_context(live_tenant.tenant):
            run = MeterSyncRun.objects.order_by("-pk").first()
            totals = {(r.meter, r.quantity) for r in SandboxUsageReport.objects.filter(customer="c1")}
            return (run.status if run and run.finished_at else None), totals

    deadline = time.monotonic() + 30
    while committed(reported)[0] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    status, totals = committed(reported)
    assert status == "succeeded"
    assert ("build-minutes", 6) in totals and ("builds", 3) in totals
