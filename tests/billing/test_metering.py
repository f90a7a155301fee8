"""Usage metering: ingestion (exactly once, per-event rejections), meters, rollups, usage queries,
metered entitlements."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.metering.models import Meter, Rollup
from tests.billing.test_entitlements import make_customer

NOW = timezone.now().replace(microsecond=0)


def ts(hours_ago: float = 0) -> str:
    return (NOW - dt.timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def ev(event_id, customer="c1", type="build.finished", hours_ago=0.0, **extra):
    return {"id": event_id, "customer": customer, "type": type, "timestamp": ts(hours_ago), **extra}


def post(fixture, body, raw=None):
    return fixture.api().post(
        "/api/v1/events", raw if raw is not None else json.dumps(body), content_type="application/json"
    )


def meter(fixture, **body):
    response = fixture.api().post("/api/v1/meters", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def shop(ci_catalog):
    make_customer(ci_catalog, "c1")
    make_customer(ci_catalog, "c2")
    # the CI catalog's meters: build-minutes (sum of properties.minutes, feature build_minutes), builds
    return ci_catalog


def usage(fixture, meter_code, customer="c1", **params):
    query = "&".join(f"{k}={v}" for k, v in {"meter": meter_code, **params}.items())
    response = fixture.api().get(f"/api/v1/customers/{customer}/usage?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_one_event_and_a_batch_are_accepted_after_commit(shop):
    response = post(shop, ev("e1", properties={"minutes": 12}))
    assert response.status_code == 202
    assert response.json() == {"inserted": 1, "duplicates": 0, "rejected": []}
    batch = {"events": [ev(f"b{i}", properties={"minutes": 1.5}) for i in range(10)]}
    assert post(shop, batch).json() == {"inserted": 10, "duplicates": 0, "rejected": []}
    assert usage(shop, "build-minutes")["total"] == 27
    assert usage(shop, "builds")["total"] == 11


def test_replaying_a_whole_batch_inserts_nothing(shop):
    batch = {"events": [ev(f"r{i}", properties={"minutes": 2}) for i in range(50)]}
    assert post(shop, batch).json()["inserted"] == 50
    assert post(shop, batch).json() == {"inserted": 0, "duplicates": 50, "rejected": []}
    # and a batch mixing old and new ids, with an id twice in the same batch
    mixed = {"events": [ev("r0", properties={"minutes": 2}), ev("n1", properties={"minutes": 2}),
                        ev("n1", properties={"minutes": 2})]}  # fmt: skip
    assert post(shop, mixed).json() == {"inserted": 1, "duplicates": 2, "rejected": []}
    assert usage(shop, "build-minutes")["total"] == 102
    with tenant_context(shop.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metering_event")
        assert cursor.fetchone()[0] == 51


@pytest.mark.parametrize(
    "bad, code",
    [
        ({"id": 5}, "invalid_id"),
        ({"id": ""}, "invalid_id"),
        ({"customer": None}, "invalid_customer"),
        ({"type": ["x"]}, "invalid_type"),
        ({"timestamp": "yesterday"}, "invalid_timestamp"),
        ({"timestamp": "2026-11-20T10:00:00"}, "invalid_timestamp"),  # no offset
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp_in_future"),
        ({"timestamp": "1999-12-31T23:00:00Z"}, "timestamp_too_old"),
        ({"value": "3"}, "invalid_value"),
        ({"value": True}, "invalid_value"),
        ({"value": 1e30}, "value_out_of_range"),
        ({"properties": [1]}, "invalid_properties"),
        ({"properties": {"minutes": "ten"}}, "invalid_value"),
        ({"properties": {"minutes": -3}}, "negative_value"),
        ({"properties": {}}, "missing_property"),
        ({"customer": "nobody"}, "unknown_customer"),
        # PostgreSQL cannot store NUL; tabs and newlines would split COPY rows: refused, not a 500
        ({"id": "a\u0000b"}, "invalid_id"),
        ({"customer": "c\t1"}, "invalid_customer"),
        ({"type": "build.finished\n"}, "invalid_type"),
        ({"properties": {"minutes": 1, "note": "a\u0000b"}}, "invalid_properties"),
        ({"properties": {"minutes": 1, "a\u0000": 1}}, "invalid_properties"),
    ],
)
def test_a_bad_event_is_rejected_alone(shop, bad, code):
    good = [ev("g1", properties={"minutes": 1}), ev("g2", properties={"minutes": 1})]
    events = [good[0], {**ev("bad", properties={"minutes": 1}), **bad}, good[1]]
    response = post(shop, {"events": events})
    assert response.status_code == 202
    body = response.json()
    assert body["inserted"] == 2 and body["duplicates"] == 0
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, code)]
    assert body["rejected"][0]["message"]
    assert usage(shop, "build-minutes")["total"] == 2


def test_quotes_backslashes_and_unicode_are_stored_as_sent(shop):
    """Events travel in COPY text: what needs escaping there must come back exactly."""
    odd = "we.ird:cust@x+y-z"  # every punctuation mark a customer id may hold
    make_customer(shop, odd)
    event = ev('id\\with"quote é', customer=odd, properties={"minutes": 4, "path": "C:\\dir\\n", "q": '"'})
    assert post(shop, {"events": [event]}).json() == {"inserted": 1, "duplicates": 0, "rejected": []}
    assert post(shop, {"events": [event]}).json()["duplicates"] == 1
    with tenant_context(shop.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT event_id, customer, properties FROM metering_event")
        (event_id, customer, properties), *others = cursor.fetchall()
    assert (event_id, customer, json.loads(properties), others) == (event["id"], odd, event["properties"], [])
    assert usage(shop, "build-minutes", customer=odd)["total"] == 4


def test_delta_arrays_carry_any_string(alpha):
    """The rollup deltas' customer arrays are written as COPY text array literals: quotes,
    backslashes, commas, braces and spaces must come back as they were."""
    from billing.metering.rollups import _text_array

    values = ["plain", 'quo"te', "back\\slash", "com,ma", "{brace}", " spaced ", "NULL", "é"]
    with tenant_context(alpha.tenant), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE arrays (a text[])")
        with cursor.copy("COPY arrays FROM STDIN") as copy:
            copy.write(_text_array(values) + "\n")
        cursor.execute("SELECT a FROM arrays")
        assert cursor.fetchone()[0] == values


def test_non_finite_numbers_make_the_body_malformed(shop):
    # NaN is not JSON: the body is refused whole (strict parsing), nothing is stored
    raw = '{"events": [{"id": "x", "customer": "c1", "type": "build.finished", "timestamp": "%s", "value": NaN}]}'
    response = post(shop, None, raw=raw % ts())
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"
    assert usage(shop, "builds")["total"] == 0


@pytest.mark.parametrize(
    "raw, status, code",
    [
        ("{not json", 400, "malformed_json"),
        ('"a string"', 400, "invalid_batch"),
        ('{"events": {"id": 1}}', 400, "invalid_batch"),
    ],
)
def test_malformed_requests_are_4xx(shop, raw, status, code):
    response = post(shop, None, raw=raw)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_batch_over_the_limit_is_413_and_stores_nothing(shop, settings):
    settings.METERING_MAX_BATCH = 5
    response = post(shop, {"events": [ev(f"o{i}", properties={"minutes": 1}) for i in range(6)]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "batch_too_large"
    assert usage(shop, "builds")["total"] == 0


def test_events_need_the_write_scope(shop):
    from accounts.services import api_key_create

    with tenant_context(shop.tenant):
        _, secret = api_key_create(name="reader", scopes=["read"])
    response = shop.api(secret).post("/api/v1/events", json.dumps(ev("s1")), content_type="application/json")
    assert response.status_code == 403


def test_a_failure_half_way_stores_none_of_the_batch(shop, monkeypatch):
    from billing.metering import ingest

    def crash(fresh):
        raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(ingest, "rollups_add", crash)
    with tenant_context(shop.tenant), pytest.raises(RuntimeError):
        ingest.events_ingest(events=[ev(f"k{i}", properties={"minutes": 1}) for i in range(5)])
    monkeypatch.undo()
    # nothing was kept, not even the ids: the same batch goes in whole afterwards
    assert (
        post(shop, {"events": [ev(f"k{i}", properties={"minutes": 1}) for i in range(5)]}).json()["inserted"]
        == 5
    )
    assert usage(shop, "build-minutes")["total"] == 5


def test_aggregations_and_windows(shop):
    meter(shop, code="peak", event_type="cpu", aggregation="max")
    meter(shop, code="low", event_type="cpu", aggregation="min")
    meter(shop, code="last", event_type="cpu", aggregation="latest")
    meter(shop, code="repos", event_type="cpu", aggregation="unique_count", value_property="repo")
    meter(shop, code="eu_cpu", event_type="cpu", aggregation="sum", filters={"region": ["eu", "ch"]})
    events = [
        ev("c1", type="cpu", hours_ago=30, value=5, properties={"repo": "a", "region": "eu"}),
        ev("c2", type="cpu", hours_ago=29, value=9, properties={"repo": "b", "region": "us"}),
        ev("c3", type="cpu", hours_ago=2, value=3, properties={"repo": "a", "region": "ch"}),
        ev("c4", type="cpu", hours_ago=1, value=4, properties={"repo": "a", "region": "eu"}),
    ]
    assert post(shop, {"events": events}).json()["inserted"] == 4
    window = {"from": ts(48), "to": ts(-1)}
    assert usage(shop, "peak", **window)["total"] == 9
    assert usage(shop, "low", **window)["total"] == 3
    assert usage(shop, "last", **window)["total"] == 4
    assert usage(shop, "repos", **window)["total"] == 2
    assert usage(shop, "eu_cpu", **window)["total"] == 12
    hourly = usage(shop, "eu_cpu", window="hour", **window)
    assert sum(b["value"] for b in hourly["data"]) == 12 and len(hourly["data"]) == 50
    daily = usage(shop, "repos", window="day", **window)["data"]
    assert [b["value"] for b in daily if b["value"]] in ([2, 1], [1, 1], [2], [1, 2])  # distinct per day
    monthly = usage(shop, "peak", window="month", **window)["data"]
    assert max(b["value"] or 0 for b in monthly) == 9


def test_usage_query_errors(shop):
    api = shop.api()
    assert api.get("/api/v1/customers/c1/usage").json()["error"]["code"] == "invalid_query"
    assert api.get("/api/v1/customers/c1/usage?meter=nope").status_code == 404
    assert api.get("/api/v1/customers/ghost/usage?meter=builds").status_code == 404
    assert api.get("/api/v1/customers/c1/usage?meter=builds&window=week").status_code == 400
    assert api.get("/api/v1/customers/c1/usage?meter=builds&from=soon").status_code == 400
    assert api.get("/api/v1/customers/c1/usage?meter=builds&from=2026-01-01T00:00:00").status_code == 400
    too_long = "/api/v1/customers/c1/usage?meter=builds&window=hour&from=2000-01-01T00:00:00Z"
    assert api.get(too_long).status_code == 400


def test_tenant_wide_usage_sums_customers(shop):
    post(
        shop,
        {"events": [ev("t1", properties={"minutes": 3}), ev("t2", customer="c2", properties={"minutes": 4})]},
    )
    response = shop.api().get("/api/v1/usage?meter=build-minutes")
    assert response.status_code == 200 and response.json()["total"] == 7


def test_a_new_meter_aggregates_the_events_already_stored(shop):
    post(shop, {"events": [ev(f"h{i}", type="deploy", value=2) for i in range(3)]})
    meter(shop, code="deploys", event_type="deploy", aggregation="sum")
    assert usage(shop, "deploys")["total"] == 6
    post(shop, ev("h9", type="deploy", value=2))
    assert usage(shop, "deploys")["total"] == 8


def test_a_new_meter_back_fills_by_its_property_and_filters(shop):
    """The back-fill reads raw events' stored properties: the value property, the filters and
    distinct values must count as they do at ingestion."""
    post(shop, {"events": [ev("p1", type="job", properties={"secs": 3, "region": "eu", "who": "a"}),
                           ev("p2", type="job", properties={"secs": 4, "region": "us", "who": "b"}),
                           ev("p3", type="job", properties={"secs": 5, "region": "eu", "who": "a"})]})  # fmt: skip
    meter(
        shop,
        code="eu-secs",
        event_type="job",
        aggregation="sum",
        value_property="secs",
        filters={"region": "eu"},
    )
    meter(shop, code="who", event_type="job", aggregation="unique_count", value_property="who")
    assert usage(shop, "eu-secs")["total"] == 8
    assert usage(shop, "who")["total"] == 2


def test_meter_validation(shop):
    api = shop.api()
    bad = [
        {"code": "Bad Code", "event_type": "x", "aggregation": "sum"},
        {"code": "ok", "event_type": "x", "aggregation": "median"},
        {"code": "ok", "event_type": "x", "aggregation": "unique_count"},
        {"code": "ok", "event_type": "x", "aggregation": "sum", "filters": {"a": []}},
        {"code": "ok", "event_type": "x", "aggregation": "sum", "feature": "sso"},  # not metered
        {"code": "builds", "event_type": "x", "aggregation": "sum"},  # exists
    ]
    for body in bad:
        response = api.post("/api/v1/meters", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    listed = api.get("/api/v1/meters").json()["results"]
    assert [m["code"] for m in listed] == ["build-minutes", "builds"]
    assert listed[0]["feature"] == "build_minutes"


def test_events_land_in_month_partitions(shop):
    post(
        shop,
        {
            "events": [
                ev("p1", hours_ago=24 * 70, properties={"minutes": 1}),
                ev("p2", properties={"minutes": 1}),
            ]
        },
    )
    with tenant_context(shop.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'metering_event' "
                       "AND relnamespace = current_schema()::regnamespace")  # fmt: skip
        assert cursor.fetchone()[0] == "p"
        cursor.execute("SELECT count(DISTINCT tableoid) FROM metering_event")
        assert cursor.fetchone()[0] == 2


def test_metered_limit_denies_once_the_period_usage_reaches_it(shop):
    def check():
        return (
            shop.api()
            .post(
                "/api/v1/entitlements/check",
                {"customer": "c1", "feature": "build_minutes"},
                content_type="application/json",
            )
            .json()
        )

    assert check()["used"] == 0 and check()["limit"] == 400
    post(shop, {"events": [ev("m1", properties={"minutes": 398})]})
    decision = check()
    assert decision["allowed"] is True and decision["used"] == 398
    post(shop, ev("m2", properties={"minutes": 2}))
    decision = check()
    assert decision["allowed"] is False and decision["reason"] == "limit_reached" and decision["used"] == 400
    # last month's usage does not count in this period
    assert usage(shop, "build-minutes", **{"from": ts(24 * 40), "to": ts(-1)})["total"] == 400


def test_unknown_customers_are_created_when_the_tenant_says_so(shop):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=shop.tenant.pk).update(unknown_usage_customer="create")
    from tenants.middleware import tenant_cache_clear

    tenant_cache_clear()
    body = post(shop, ev("u1", customer="newcomer", properties={"minutes": 5})).json()
    assert body == {"inserted": 1, "duplicates": 0, "rejected": []}
    assert usage(shop, "build-minutes", customer="newcomer")["total"] == 5
    # ids the customers API would refuse are refused here too, without losing the good event
    body = post(shop, {"events": [ev("u2", customer="bad id/x", properties={"minutes": 1}),
                                  ev("u3", customer="newcomer", properties={"minutes": 1})]}).json()  # fmt: skip
    assert body["inserted"] == 1 and [(r["index"], r["code"]) for r in body["rejected"]] == [
        (0, "invalid_customer")
    ]
    with tenant_context(shop.tenant):
        from billing.memberships.models import Customer

        assert not Customer.objects.filter(external_id="bad id/x").exists()


def test_rollups_are_hourly_and_exact(shop):
    post(shop, {"events": [ev(f"x{i}", hours_ago=0.01 * i, properties={"minutes": 0.1}) for i in range(10)]})
    from billing.metering.rollups import rollups_fold

    with tenant_context(shop.tenant):
        minutes = Meter.objects.get(code="build-minutes")
        before = usage(shop, "build-minutes")["total"]  # read through the deltas, before any fold
        assert rollups_fold() > 0 and rollups_fold() == 0  # folded once; nothing left to fold
        assert usage(shop, "build-minutes")["total"] == before == 1
        rows = Rollup.objects.filter(meter=minutes, customer="c1")
        assert sum(r.sum for r in rows) == pytest.approx(1) and str(sum(r.sum for r in rows)) == "1.000000000"
        assert sum(r.count for r in rows) == 10


def test_a_metered_feature_with_a_meter_takes_no_counter_changes(shop):
    response = shop.api().post(
        "/api/v1/customers/c1/counters/build_minutes", {"delta": 5}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "metered_by_events"


def test_concurrent_batches_with_overlapping_ids_store_each_event_once(live_tenant):
    from billing.metering.ingest import events_ingest
    from billing.metering.services import meter_create
    from tests.helpers import committed, run_parallel

    def setup():
        with tenant_context(live_tenant.tenant):
            meter_create(code="jobs", event_type="job", aggregation="sum")

    committed(setup)
    shared = [ev(f"s{i}", type="job", value=1) for i in range(300)]

    def ingest(i):
        own = [ev(f"t{i}-{j}", type="job", value=1) for j in range(50)]
        batch = shared[i * 50 :] + own + shared[: i * 50]  # the same ids, in different orders
        with tenant_context(live_tenant.tenant):
            return events_ingest(events=batch)

    def fold(i):
        from billing.metering.rollups import rollups_fold

        with tenant_context(live_tenant.tenant):
            return rollups_fold()

    # four ingesting threads and two folding ones at the same time
    results = run_parallel(lambda i: ingest(i) if i < 4 else fold(i), 6)[:4]
    assert sum(r.inserted for r in results) == 300 + 4 * 50
    assert sum(r.duplicates for r in results) == 3 * 300

    def totals():
        with tenant_context(live_tenant.tenant), connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM metering_event")
            events = cursor.fetchone()
            cursor.execute("SELECT sum(count), sum(sum) FROM metering_rollup_all")
            return events, cursor.fetchone()

    (count, distinct), (rolled_count, rolled_sum) = committed(totals)
    assert count == distinct == 500 and rolled_count == 500 and rolled_sum == 500


def test_catalog_yaml_declares_meters_and_round_trips(ci_catalog):
    from billing.tiers.catalog import catalog_export, catalog_import
    from billing.tiers.exceptions import CatalogError

    with tenant_context(ci_catalog.tenant):
        minutes = Meter.objects.get(code="build-minutes")
        assert (minutes.aggregation, minutes.value_property, minutes.feature.code) == (
            "sum",
            "minutes",
            "build_minutes",
        )
        exported = catalog_export()
        assert "build-minutes:" in exported
        report = catalog_import(text=exported)
        assert not report.changed  # re-importing the export writes nothing
        changed = exported.replace("aggregation: sum", "aggregation: max", 1)
        with pytest.raises(CatalogError) as error:
            catalog_import(text=changed, filename="ci.yaml")
        assert "definition is fixed" in error.value.message and "ci.yaml:" in error.value.message
        assert Meter.objects.get(code="build-minutes").aggregation == "sum"
        bad = "features: {}\nmeters:\n  x: {event_type: e, aggregation: median}\n"
        with pytest.raises(CatalogError) as error:
            catalog_import(text=bad, filename="bad.yaml")
        assert error.value.details["line"] == 3 and error.value.details["field"] == "meters.x.aggregation"


def test_usage_pages_show_charts(shop):
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.memberships.services import customer_for_user
    from tests.conftest import PASSWORD

    with tenant_context(shop.tenant):
        staff = user_create(email="finance@alpha.test", password=PASSWORD, role=Role.FINANCE)
        buyer = user_create(email="buyer@alpha.test", password=PASSWORD, role=Role.CUSTOMER)
        own = customer_for_user(user=buyer).external_id
    post(shop, {"events": [ev("w1", customer=own, properties={"minutes": 7}),
                           ev("w2", customer="c2", properties={"minutes": 5})]})  # fmt: skip
    client = Client(HTTP_HOST=shop.host)
    client.force_login(staff)
    page = client.get("/usage/?meter=build-minutes").content.decode()
    assert 'data-testid="total">12<' in page and own in page and "c2" in page
    # a Chart.js chart: its data in a json_script block, drawn by static/js/app.js
    assert '<canvas data-chart="chart-tenant-usage-build-minutes"' in page
    assert '<script id="chart-tenant-usage-build-minutes" type="application/json">' in page
    assert client.get("/usage/?meter=build-minutes&window=hour").status_code == 200
    client.force_login(buyer)
    assert client.get("/usage/").status_code == 403
    plan = client.get("/account/plan/").content.decode()
    assert 'data-meter="build-minutes"' in plan and 'data-chart="chart-usage-build-minutes"' in plan
    assert "7 minutes" in plan


def test_partitions_are_made_ahead_of_time(alpha):
    from billing.metering.ingest import partitions_known
    from billing.metering.tasks import partitions_ahead_task

    with tenant_context(alpha.tenant):
        partitions_ahead_task.apply()
        now = timezone.now()
        months = {(now.year, now.month)}
        year, month = now.year, now.month
        for _ in range(2):
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            months.add((year, month))
        assert months <= partitions_known()


def test_tenant_and_monthly_rollups_agree_with_the_hourly_ones_before_and_after_a_fold(shop):
    from billing.metering.rollups import rollups_fold
    from billing.metering.selectors import top_customers

    events = [ev(f"f{i}", customer="c1" if i % 3 else "c2", hours_ago=i * 0.7, properties={"minutes": i + 1})
              for i in range(12)]  # fmt: skip
    post(shop, {"events": events})
    start = (timezone.now() - dt.timedelta(hours=20)).isoformat().replace("+00:00", "Z")

    def figures():
        tenant = shop.api().get(f"/api/v1/usage?meter=build-minutes&window=hour&from={start}").json()
        per_customer = [usage(shop, "build-minutes", customer=c, window="hour", **{"from": start})["total"]
                        for c in ("c1", "c2")]  # fmt: skip
        with tenant_context(shop.tenant):
            minutes = Meter.objects.get(code="build-minutes")
            month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            top = dict(top_customers(meter=minutes, month=month))
        return tenant["total"], sum(b["value"] for b in tenant["data"]), per_customer, top

    before = figures()
    with tenant_context(shop.tenant):
        assert rollups_fold() > 0
    after = figures()
    assert before == after
    total, summed, (c1, c2), top = after
    assert total == summed == c1 + c2 == sum(range(1, 13))
    # the monthly totals count what fell in this calendar month (the events may straddle its start)
    month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    expected = {}
    for i in range(12):
        if NOW - dt.timedelta(hours=i * 0.7) >= month:
            customer = "c1" if i % 3 else "c2"
            expected[customer] = expected.get(customer, 0) + i + 1
    assert {c: float(v) for c, v in top.items()} == {c: float(v) for c, v in expected.items()}


def test_every_aggregation_reads_the_same_from_packed_deltas_and_folded_rollups(shop):
    """Deltas are packed per batch, meter and hour (every customer's share in one row): reads of a
    few customers (array_position), of many (unnested) and of the tenant (the batch totals) must
    agree with each other, with the events, and with the rollups after a fold."""
    from billing.memberships.services import customer_upsert
    from billing.metering.ingest import events_ingest
    from billing.metering.rollups import FEW_CUSTOMERS, rollups_fold
    from billing.metering.selectors import period_usage, period_usage_many

    customers = [f"p{i}" for i in range(FEW_CUSTOMERS + 8)]
    for aggregation in ("max", "min", "latest", "sum", "count"):
        meter(shop, code=f"p-{aggregation}", event_type="job", aggregation=aggregation)
    meter(shop, code="p-who", event_type="job", aggregation="unique_count", value_property="who")
    batches = [
        [{"id": f"p{b}-{i}", "customer": customers[(i * 7 + b) % len(customers)], "type": "job",
          "value": (i * 13 + b * 5) % 23, "timestamp": (NOW - dt.timedelta(seconds=i * 3 + b)).isoformat(),
          "properties": {"who": f"u{(i + b) % 5}"}} for i in range(60)]
        for b in range(3)  # three batches: three delta rows per meter and hour to add up
    ]  # fmt: skip
    mine = {c: [e for batch in batches for e in batch if e["customer"] == c] for c in customers}
    with tenant_context(shop.tenant):
        for c in customers:
            customer_upsert(external_id=c)
        for batch in batches:
            assert events_ingest(events=batch).inserted == len(batch)
        start, end = NOW - dt.timedelta(hours=2), NOW + dt.timedelta(hours=1)
        meters = list(Meter.objects.filter(code__startswith="p-"))
        pk = {m.code.removeprefix("p-"): m.pk for m in meters}

        def read():
            many = period_usage_many(customers=customers, meters=meters, start=start, end=end)
            few = {c: period_usage(customer=c, meters=meters, start=start, end=end) for c in customers[:3]}
            return many, few, period_usage(customer=None, meters=meters, start=start, end=end)

        before = read()
        assert rollups_fold() > 0
        after = read()
    assert before == after
    many, few, tenant = after
    for c in customers[:3]:  # the array_position path and the unnesting one agree
        assert few[c] == {m.pk: many[(c, m.pk)] for m in meters}
    for c, events in mine.items():
        values = [e["value"] for e in events]
        assert many[(c, pk["sum"])] == sum(values) and many[(c, pk["count"])] == len(values)
        assert (many[(c, pk["max"])], many[(c, pk["min"])]) == (max(values), min(values))
        assert many[(c, pk["latest"])] == max(events, key=lambda e: e["timestamp"])["value"]
        assert many[(c, pk["who"])] == len({e["properties"]["who"] for e in events})
    every = [e for batch in batches for e in batch]
    assert tenant[pk["sum"]] == sum(e["value"] for e in every) and tenant[pk["count"]] == len(every)
    assert (tenant[pk["max"]], tenant[pk["min"]]) == (22, 0)
    assert tenant[pk["latest"]] == max(every, key=lambda e: e["timestamp"])["value"]


def test_the_delta_queue_is_vacuumed_after_folds_without_autovacuum(live_tenant, monkeypatch):
    """Folded delta rows are dead weight every usage read scans: the fold path vacuums the queue
    itself once enough of them pile up (this machine's PostgreSQL runs with autovacuum off)."""
    from billing.metering import rollups
    from billing.metering.ingest import events_ingest
    from tests.helpers import committed

    monkeypatch.setattr(rollups, "VACUUM_AFTER_ROWS", 20)
    monkeypatch.setattr(rollups, "rollups_fold_soon", lambda: None)  # one fold, below, takes them all

    def work():
        with tenant_context(live_tenant.tenant), connection.cursor() as cursor:
            for batch in range(30):  # one delta row per batch for each of the two meters
                events_ingest(events=[ev(f"v{batch}-{i}", properties={"minutes": 1}) for i in range(3)])
            rollups.rollups_fold()
            vacuumed = rollups.rollups_vacuum_if_due()
            cursor.execute(
                "SELECT count(*), pg_relation_size('metering_rollup_delta') FROM metering_rollup_delta"
            )
            left, size = cursor.fetchone()
            cursor.execute("SELECT sum(count) FROM metering_rollup_all WHERE customer = 'c1'")
            return vacuumed, left, size, cursor.fetchone()[0], rollups.rollups_vacuum_if_due()

    vacuumed, left, size, counted, again = committed(work)
    assert vacuumed and (left, size) == (0, 0)  # the dead rows are gone and the file truncated
    assert counted == 2 * 90  # nothing lost: two meters (builds, build-minutes) x 90 events
    assert not again  # not again until enough rows are folded anew


def test_cached_meters_and_prices_follow_every_change(live_tenant):
    """Ingestion keeps meters and prices cached per process while the tenant's config version
    holds: a meter or a burn rate created afterwards must count from the next batch on."""
    from decimal import Decimal

    from billing.memberships.models import Customer
    from billing.metering.credit_models import MICROS, CreditAccount
    from billing.metering.credits import burn_rate_create, credit_grant_create
    from billing.metering.ingest import events_ingest
    from billing.metering.ingest_config import _cache
    from billing.metering.models import ConfigVersion
    from billing.metering.selectors import period_usage
    from billing.metering.services import meter_create
    from tests.helpers import committed

    def step(fn):
        def run():
            with tenant_context(live_tenant.tenant):
                return fn()

        return committed(run)

    def job(i):
        return ev(f"job-{i}", type="job", value=2)

    step(lambda: events_ingest(events=[job(1)]))  # no meter for jobs yet: cached as such
    assert any(key[0] == live_tenant.tenant.schema_name for key in _cache)
    before = step(lambda: ConfigVersion.objects.get().version)
    step(lambda: meter_create(code="jobs", event_type="job", aggregation="sum"))
    step(lambda: events_ingest(events=[job(2)]))

    def usage_now():
        jobs = Meter.objects.get(code="jobs")
        return period_usage(customer="c1", meters=[jobs], start=NOW - dt.timedelta(hours=1), end=NOW + dt.timedelta(hours=1))[jobs.pk]  # fmt: skip

    assert step(usage_now) == 4  # job-1 by the back-fill, job-2 by ingestion
    step(lambda: credit_grant_create(customer=Customer.objects.get(external_id="c1"), amount=10 * MICROS,
                                     effective_at=NOW - dt.timedelta(days=1)))  # fmt: skip
    step(lambda: burn_rate_create(meter_code="jobs", credits_per_unit=Decimal(1), effective_from=NOW - dt.timedelta(days=1)))  # fmt: skip
    step(lambda: events_ingest(events=[job(3)]))
    assert step(lambda: CreditAccount.objects.get().balance) == 8 * MICROS  # job-3 burnt 2 credits
    assert step(lambda: ConfigVersion.objects.get().version) > before


def test_one_fold_a_second_per_tenant_across_processes(monkeypatch):
    """Two web workers must not both fold the same tenant within a second (each fold's cost grows
    with the rollup rows it touches); another tenant is not held back."""
    import secrets

    from billing.metering import rollups

    a, b = f"t_{secrets.token_hex(4)}", f"t_{secrets.token_hex(4)}"
    assert rollups._fold_due(a)
    rollups._last_fold.clear()  # as another process would start: nothing folded there yet
    assert not rollups._fold_due(a) and rollups._fold_due(b)
    import time

    monkeypatch.setattr(rollups, "FOLD_EVERY_SECONDS", 0.05)
    c = f"t_{secrets.token_hex(4)}"
    assert rollups._fold_due(c)
    rollups._last_fold.clear()
    assert not rollups._fold_due(c)
    time.sleep(0.06)
    assert rollups._fold_due(c)  # the Redis key expires with the interval


def test_a_meter_being_created_in_one_tenant_never_blocks_ingestion_in_another(live_tenant, beta):
    """The ingestion lock is per tenant schema: tenant A creating (back-filling) a meter holds it
    exclusively until its transaction ends; tenant B's batches must not wait for that."""
    import threading

    from django.db import connection as conn
    from django.db import transaction

    from billing.metering.ingest import events_ingest
    from billing.metering.services import meter_create
    from tests.helpers import run_parallel

    created, done = threading.Event(), threading.Event()

    def work(i):
        if i == 0:  # tenant A: a meter creation whose transaction is still open
            with tenant_context(live_tenant.tenant), transaction.atomic():
                meter_create(code="slow", event_type="deploy", aggregation="count")
                created.set()
                done.wait(10)
                transaction.set_rollback(True)
            return None
        created.wait(10)
        try:
            with tenant_context(beta.tenant):
                with conn.cursor() as cursor:
                    cursor.execute("SET lock_timeout = '2s'")  # waiting on A's lock would fail here
                return events_ingest(events=[ev("x1", customer="nobody-here")])
        finally:
            done.set()

    result = run_parallel(work, 2)[1]
    assert [r["code"] for r in result.rejected] == ["unknown_customer"]  # it went past the lock at once
