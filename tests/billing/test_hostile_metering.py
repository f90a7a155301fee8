"""Hostile values in usage events and usage / AI-cost queries (issue 10, items 15 and 18)."""

import json

import pytest
from django_tenants.utils import tenant_context

from billing.metering.models import UsageEvent
from tests.billing.test_entitlements import make_customer
from tests.billing.test_metering import ev, post, usage


@pytest.fixture
def shop(ci_catalog):
    make_customer(ci_catalog, "c1")
    return ci_catalog


OVERFLOWING = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("timestamp", OVERFLOWING)
def test_a_timestamp_overflowing_utc_rejects_that_event_alone(shop, timestamp):
    events = [
        ev("g1", properties={"minutes": 1}),
        {**ev("bad", properties={"minutes": 1}), "timestamp": timestamp},
        ev("g2", properties={"minutes": 1}),
    ]
    response = post(shop, {"events": events})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["inserted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "invalid_timestamp")]
    assert usage(shop, "build-minutes")["total"] == 2


@pytest.mark.parametrize(
    "path",
    ["/api/v1/customers/c1/usage?meter=builds&", "/api/v1/usage?meter=builds&", "/api/v1/customers/c1/ai-costs?",
     "/api/v1/ai-costs?"],
)  # fmt: skip
@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("timestamp", [*OVERFLOWING, "9999-12-31T23:59:59Z"])
def test_a_timestamp_overflowing_utc_in_a_query_is_a_400(shop, path, param, timestamp):
    response = shop.api().get(f"{path}{param}={timestamp.replace('+', '%2B')}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_query"
    assert response.json()["error"]["details"] == {"field": param}


@pytest.mark.parametrize("number", [2**64 + 1, 10**20 - 1, -(2**63) - 1])
def test_integers_beyond_64_bits_are_stored_exactly(shop, number):
    raw = json.dumps({"events": [ev("big", properties={"minutes": 1, "n": number}, value=number)]})
    response = post(shop, None, raw=raw)
    assert response.status_code == 202, response.content
    assert response.json()["inserted"] == 1, response.content
    with tenant_context(shop.tenant):
        stored = UsageEvent.objects.values("value", "properties").get(event_id="big")
    assert stored["value"] == number  # not 18446744073709551616, the float next to 2**64 + 1
    properties = stored["properties"]
    assert (json.loads(properties) if isinstance(properties, str) else properties)["n"] == number


def test_an_integer_from_10_to_the_20_is_rejected_alone(shop):
    raw = json.dumps({"events": [ev("g1", properties={"minutes": 1}), ev("big", value=10**20)]})
    body = post(shop, None, raw=raw).json()
    assert body["inserted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "value_out_of_range")]
