"""The Developers page (issue 13 item 6): integrator keys, webhook endpoints with their delivery log
and resend, the provider-event inbox with filters and replay, the explorer of recent API calls and
usage events. Role guards, actions through the services with a flash message, filters, hostile
query strings (never a 500) and another tenant's ids (404)."""

import datetime as dt
import json
import re

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.keys import key_hash
from accounts.models import IntegratorApiKey
from accounts.roles import Role
from accounts.services import user_create
from billing.events.models import Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint
from billing.events.services import endpoint_create, event_publish
from billing.inbox.models import InboxEvent, InboxStatus
from kernel.requestlog import request_log_flush
from tests.billing.test_metering import ev, shop  # noqa: F401  (a fixture)
from tests.conftest import PASSWORD


def login(fixture, email=None, role=None):
    if role is not None:
        with tenant_context(fixture.tenant):
            user_create(email=email, password=PASSWORD, role=role)
    client = fixture.client()
    response = client.post("/accounts/login/", {"login": email or fixture.owner_email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def flashes(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def an_endpoint(fixture, url="https://hooks.example.com/in"):
    with tenant_context(fixture.tenant):
        endpoint, _ = endpoint_create(url=url)
    return endpoint


def a_delivery(fixture, endpoint, *, status=DeliveryStatus.DEAD):
    with tenant_context(fixture.tenant):
        event = event_publish(
            type="payment.succeeded", payload={"amount": 1200, "currency": "usd"}, customer="c1"
        )
        delivery = Delivery.objects.get(event=event, endpoint=endpoint)
        Delivery.objects.filter(pk=delivery.pk).update(status=status, attempts=8, last_status_code=500)
        DeliveryAttempt.objects.create(delivery=delivery, status_code=500, duration_ms=42)
    return delivery


def an_inbox_event(
    fixture, event_id, *, provider="stripe", status=InboxStatus.DEAD, type="invoice.paid", at=None
):
    with tenant_context(fixture.tenant):
        event = InboxEvent.objects.create(
            provider=provider, event_id=event_id, event_type=type, status=status, attempts=3,
            payload={"id": event_id, "type": type, "data": {"object": {"customer": "cus_1"}}},
            last_error="ValueError: no such price price_9",
        )  # fmt: skip
        if at is not None:
            InboxEvent.objects.filter(pk=event.pk).update(received_at=at)
    return event


# --- role guards ----------------------------------------------------------------------------------

PAGES = ["/developers/", "/developers/webhooks/", "/developers/inbox/", "/developers/explorer/"]


def test_anonymous_is_sent_to_login_and_customers_are_refused(beta):
    for page in [*PAGES, "/developers/keys/"]:
        response = beta.client().get(page)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], page
    customer = login(beta, "customer@beta.test")
    for page in [*PAGES, "/developers/keys/"]:
        assert customer.get(page).status_code == 403, page
    assert b'href="/developers/"' not in customer.get("/account/plan/").content


def test_owner_sees_every_tab_and_the_nav_link(alpha):
    owner = login(alpha)
    for page in [*PAGES, "/developers/keys/"]:
        response = owner.get(page)
        assert response.status_code == 200, page
    page = owner.get("/developers/").content.decode()
    assert 'href="/developers/"' in page and 'href="/developers/keys/"' in page


def test_admin_manages_webhooks_but_not_keys(alpha):
    admin = login(alpha, "admin@alpha.test", Role.ADMIN)
    assert admin.get("/developers/keys/").status_code == 403
    assert 'href="/developers/keys/"' not in admin.get("/developers/").content.decode()
    response = admin.post("/developers/webhooks/", {"url": "https://admin.example.com/hook"})
    assert response.status_code == 200
    with tenant_context(alpha.tenant):
        assert WebhookEndpoint.objects.filter(url="https://admin.example.com/hook").exists()


def test_support_reads_but_cannot_act(alpha):
    endpoint = an_endpoint(alpha)
    delivery = a_delivery(alpha, endpoint)
    event = an_inbox_event(alpha, "evt_support")
    support = login(alpha, "support@alpha.test", Role.SUPPORT)
    for page in [*PAGES, f"/developers/webhooks/{endpoint.pk}/", f"/developers/inbox/{event.pk}/"]:
        assert support.get(page).status_code == 200, page
    assert support.get("/developers/keys/").status_code == 403
    detail = support.get(f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/").content.decode()
    assert "Resend" not in detail
    assert (
        support.post(f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/").status_code
        == 403
    )
    assert support.post(f"/developers/inbox/{event.pk}/replay/").status_code == 403
    assert support.post(f"/developers/webhooks/{endpoint.pk}/delete/").status_code == 403
    response = support.post("/developers/webhooks/", {"url": "https://support.example.com/hook"}, follow=True)
    assert "can read webhook endpoints but not add them" in " ".join(flashes(response))
    with tenant_context(alpha.tenant):
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD
        assert InboxEvent.objects.get(pk=event.pk).status == InboxStatus.DEAD
        assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == [endpoint.url]


# --- integrator keys ------------------------------------------------------------------------------


def test_owner_creates_rotates_and_revokes_keys(alpha):
    owner = login(alpha)
    response = owner.post("/developers/keys/", {"action": "create", "name": "deploy", "scopes": ["read"]})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(rb"mk_test_[A-Za-z0-9]{40}", response.content).group().decode()
    assert any("copy the secret now" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        key = IntegratorApiKey.objects.get(key_hash=key_hash(secret))
    page = owner.get("/developers/keys/").content.decode()
    assert secret not in page and secret[:12] in page  # shown once

    response = owner.post("/developers/keys/", {"action": "rotate", "key_id": key.pk})
    rotated = re.search(rb"mk_test_[A-Za-z0-9]{40}", response.content).group().decode()
    assert rotated != secret
    response = owner.post("/developers/keys/", {"action": "revoke", "key_id": key.pk}, follow=True)
    assert f"Revoked {key.prefix}…" in flashes(response)
    with tenant_context(alpha.tenant):
        key.refresh_from_db()
        assert key.revoked_at is not None and key.rotated_to.key_hash == key_hash(rotated)


def test_keys_bad_input_is_a_message_or_a_404_never_a_500(alpha):
    owner = login(alpha)
    assert owner.post("/developers/keys/", {"action": "revoke", "key_id": "x"}).status_code == 404
    assert owner.post("/developers/keys/", {"action": "revoke", "key_id": str(2**70)}).status_code == 404
    response = owner.post("/developers/keys/", {"action": "explode"}, follow=True)
    assert "Unknown action." in flashes(response)
    response = owner.post("/developers/keys/", {"action": "create", "name": "", "scopes": ["nope"]})
    assert response.status_code == 200 and b"errors" in response.content


def test_the_old_keys_address_redirects(alpha):
    owner = login(alpha)
    response = owner.get("/settings/api-keys/")
    assert response.status_code == 302 and response["Location"] == "/developers/keys/"
    response = owner.post("/settings/api-keys/", {"action": "create", "name": "old form", "scopes": ["read"]})
    assert response.status_code == 307 and response["Location"] == "/developers/keys/"


# --- webhook endpoints ----------------------------------------------------------------------------


def test_create_endpoint_shows_its_secret_once(alpha):
    owner = login(alpha)
    response = owner.post(
        "/developers/webhooks/",
        {"url": "https://hooks.example.com/a", "description": "prod", "event_types": ["payment.*"]},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", response.content.decode()).group()
    assert any("copy its signing secret now" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        endpoint = WebhookEndpoint.objects.get(url="https://hooks.example.com/a")
        assert endpoint.event_types == ["payment.*"] and endpoint.description == "prod"
    assert secret not in owner.get("/developers/webhooks/").content.decode()


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/", "javascript:alert(1)", "not a url", "", "https://", "x" * 2100]
)
def test_invalid_endpoint_url_is_a_form_error(alpha, url):
    response = login(alpha).post("/developers/webhooks/", {"url": url, "event_types": ["payment.*"]})
    assert response.status_code == 200
    assert response.context["form"].errors.get("url")
    with tenant_context(alpha.tenant):
        assert not WebhookEndpoint.objects.exists()


def test_unknown_event_type_and_the_endpoint_limit_are_form_errors(alpha, settings):
    owner = login(alpha)
    response = owner.post(
        "/developers/webhooks/", {"url": "https://a.example.com/", "event_types": ["no.such"]}
    )
    assert response.context["form"].errors.get("event_types")
    settings.WEBHOOK_ENDPOINTS_MAX = 1
    an_endpoint(alpha)
    response = owner.post("/developers/webhooks/", {"url": "https://b.example.com/"})
    assert "at most 1 webhook endpoints" in str(response.context["form"].non_field_errors())
    with tenant_context(alpha.tenant):
        assert WebhookEndpoint.objects.count() == 1


def test_disable_enable_and_delete_an_endpoint(alpha):
    endpoint = an_endpoint(alpha)
    owner = login(alpha)
    response = owner.post(f"/developers/webhooks/{endpoint.pk}/disable/", follow=True)
    assert any("Disabled" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        endpoint.refresh_from_db()
        assert not endpoint.is_active and endpoint.disabled_reason == "disabled by hand"
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=7)
    response = owner.post(f"/developers/webhooks/{endpoint.pk}/enable/", follow=True)
    assert any("Enabled" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        endpoint.refresh_from_db()
        assert endpoint.is_active and endpoint.consecutive_failures == 0 and not endpoint.disabled_reason
    assert owner.get(f"/developers/webhooks/{endpoint.pk}/delete/").status_code == 405  # POST only
    assert owner.post(f"/developers/webhooks/{endpoint.pk}/explode/").status_code == 404
    response = owner.post(f"/developers/webhooks/{endpoint.pk}/delete/", follow=True)
    assert any("Deleted https://hooks.example.com/in" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        assert not WebhookEndpoint.objects.exists()
    assert owner.post(f"/developers/webhooks/{endpoint.pk}/delete/").status_code == 404


def test_delivery_log_and_resend_once_per_click(alpha):
    endpoint = an_endpoint(alpha)
    delivery = a_delivery(alpha, endpoint)
    owner = login(alpha)
    page = owner.get(f"/developers/webhooks/{endpoint.pk}/")
    assert [row.pk for row in page.context["page"].rows] == [delivery.pk]
    assert owner.get(f"/developers/webhooks/{endpoint.pk}/?status=succeeded").context["page"].rows == []
    detail = owner.get(f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/")
    body = detail.content.decode()
    assert "HTTP 500" in body and "42 ms" in body and "&quot;amount&quot;: 1200" in body
    token = detail.context["once"]

    url = f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/"
    response = owner.post(url, {"once": token}, follow=True)
    assert any("Resending" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        fresh = Delivery.objects.get(pk=delivery.pk)
        assert (fresh.status, fresh.attempts) == (DeliveryStatus.PENDING, 0)
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=8)
    # the same form posted again (a double click, a reload) does not resend a second time
    response = owner.post(url, {"once": token}, follow=True)
    assert any("already being resent" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD


def test_a_delivery_of_another_endpoint_is_a_404(alpha):
    first, second = an_endpoint(alpha), an_endpoint(alpha, "https://second.example.com/")
    delivery = a_delivery(alpha, first)
    owner = login(alpha)
    assert owner.get(f"/developers/webhooks/{second.pk}/deliveries/{delivery.pk}/").status_code == 404
    assert owner.post(f"/developers/webhooks/{second.pk}/deliveries/{delivery.pk}/resend/").status_code == 404


# --- the inbox ------------------------------------------------------------------------------------


def test_inbox_filters(alpha):
    now = timezone.now()
    dead = an_inbox_event(alpha, "evt_dead", at=now - dt.timedelta(days=3))
    failed = an_inbox_event(
        alpha, "evt_failed", status=InboxStatus.FAILED, type="customer.subscription.updated"
    )
    applied = an_inbox_event(alpha, "pl_1", provider="polar", status=InboxStatus.APPLIED, type="order.paid")
    owner = login(alpha)

    def ids(query=""):
        response = owner.get(f"/developers/inbox/?{query}")
        assert response.status_code == 200
        return {row.pk for row in response.context["page"].rows}

    assert ids() == {dead.pk, failed.pk, applied.pk}
    assert ids("provider=polar") == {applied.pk}
    assert ids("status=dead") == {dead.pk}
    assert ids("status=failed&provider=stripe") == {failed.pk}
    assert ids("event_type=subscription") == {failed.pk}
    today = now.date().isoformat()
    assert ids(f"received_from={today}") == {failed.pk, applied.pk}
    assert ids(f"received_to={(now - dt.timedelta(days=2)).date().isoformat()}") == {dead.pk}
    response = owner.get(f"/developers/inbox/?received_from={today}&received_to=2000-01-01")
    assert "“To” is before “From”." in response.content.decode()


def test_inbox_pages_by_id(alpha, monkeypatch):
    from console.developers import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    events = [an_inbox_event(alpha, f"evt_{n}") for n in range(5)]
    owner = login(alpha)
    first = owner.get("/developers/inbox/?status=dead")
    assert [row.pk for row in first.context["page"].rows] == [events[4].pk, events[3].pk]
    before = first.context["page"].next_before
    assert f"status=dead&amp;before={before}" in first.content.decode()
    second = owner.get(f"/developers/inbox/?status=dead&before={before}")
    assert [row.pk for row in second.context["page"].rows] == [events[2].pk, events[1].pk]


def test_inbox_detail_and_replay(alpha):
    event = an_inbox_event(alpha, "evt_replay")
    applied = an_inbox_event(alpha, "evt_ok", status=InboxStatus.APPLIED)
    owner = login(alpha)
    detail = owner.get(f"/developers/inbox/{event.pk}/")
    body = detail.content.decode()
    assert "no such price price_9" in body and "cus_1" in body and 'data-testid="replay"' in body
    token = detail.context["once"]
    response = owner.post(f"/developers/inbox/{event.pk}/replay/", {"once": token}, follow=True)
    assert any("Replaying stripe event evt_replay" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        replayed = InboxEvent.objects.get(pk=event.pk)
        assert (replayed.status, replayed.attempts) == (InboxStatus.PENDING, 0)
        InboxEvent.objects.filter(pk=event.pk).update(status=InboxStatus.DEAD, attempts=3)
    response = owner.post(f"/developers/inbox/{event.pk}/replay/", {"once": token}, follow=True)
    assert any("already queued again" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        assert InboxEvent.objects.get(pk=event.pk).status == InboxStatus.DEAD

    assert 'data-testid="replay"' not in owner.get(f"/developers/inbox/{applied.pk}/").content.decode()
    response = owner.post(f"/developers/inbox/{applied.pk}/replay/", follow=True)
    assert any("Only failed, dead or unmatched events replay" in m for m in flashes(response))
    with tenant_context(alpha.tenant):
        assert InboxEvent.objects.get(pk=applied.pk).status == InboxStatus.APPLIED


# --- hostile input, another tenant ----------------------------------------------------------------

HOSTILE = [
    "status=bogus",
    "provider=%3Cscript%3Ealert(1)%3C/script%3E",
    "received_from=2024-13-45&received_to=yesterday",
    "received_from=99999-01-01",
    "before=-1",
    "before=99999999999999999999999999",
    "before=1e9",
    "event_type=" + "x" * 500,
    "event_type=%27%20OR%201%3D1--",
    "status=dead&status=failed&provider=",
    "outcome=maybe&method=BREW&customer=" + "c" * 400,
    "customer=%27%3B%20DROP%20TABLE%20metering_event%3B--",
    "page=-3&sort=__class__",
    "%ff%fe=%c0%af",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_query_strings_never_500(alpha, query):
    endpoint = an_endpoint(alpha)
    owner = login(alpha)
    for page in [*PAGES, f"/developers/webhooks/{endpoint.pk}/"]:
        response = owner.get(f"{page}?{query}")
        assert response.status_code == 200, (page, query, response.status_code)


def test_hostile_ids_are_404(alpha):
    owner = login(alpha)
    for path in [
        "/developers/webhooks/99999999999999999999999/",
        "/developers/webhooks/0/",
        "/developers/inbox/9223372036854775808/",
        "/developers/webhooks/1/deliveries/99999999999999999999/",
    ]:
        assert owner.get(path).status_code == 404, path
    assert owner.post("/developers/inbox/99999999999999999999999/replay/").status_code == 404


def test_another_tenants_rows_are_404(alpha, beta):
    endpoint = an_endpoint(beta, "https://beta.example.com/hook")
    delivery = a_delivery(beta, endpoint)
    event = an_inbox_event(beta, "evt_beta")
    with tenant_context(alpha.tenant):
        assert not WebhookEndpoint.objects.exists() and not InboxEvent.objects.exists()
    owner = login(alpha)
    assert owner.get(f"/developers/webhooks/{endpoint.pk}/").status_code == 404
    assert owner.get(f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/").status_code == 404
    assert owner.post(f"/developers/webhooks/{endpoint.pk}/delete/").status_code == 404
    assert (
        owner.post(f"/developers/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/").status_code == 404
    )
    assert owner.get(f"/developers/inbox/{event.pk}/").status_code == 404
    assert owner.post(f"/developers/inbox/{event.pk}/replay/").status_code == 404
    assert "beta.example.com" not in owner.get("/developers/webhooks/").content.decode()
    with tenant_context(beta.tenant):
        assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD


# --- the explorer ---------------------------------------------------------------------------------


def test_explorer_lists_api_calls_and_ingestion_outcomes_without_secrets(shop, beta):  # noqa: F811
    request_log_flush()  # what earlier tests' calls left in this process's buffer
    cache.clear()
    api = shop.api()
    assert api.get("/api/v1/me", HTTP_IDEMPOTENCY_KEY="idem-42").status_code == 200
    body = {"events": [ev("ok1", properties={"minutes": 3}), {"id": "bad", "customer": "c1"}]}
    response = api.post("/api/v1/events", json.dumps(body), content_type="application/json")
    assert response.status_code == 202 and response.json()["inserted"] == 1
    assert shop.api("mk_test_" + "x" * 40).get("/api/v1/me").status_code == 401
    request_log_flush()

    page = login(shop).get("/developers/explorer/")
    calls = page.context["calls"]
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("GET", "/api/v1/me", 401),
        ("POST", "/api/v1/events", 202),
        ("GET", "/api/v1/me", 200),
    ]
    assert calls[2]["key"] == shop.api_key[:12] and calls[2]["idempotency_key"] == "idem-42"
    assert calls[1]["note"]["inserted"] == 1 and calls[1]["note"]["rejected"] == 1
    assert len(calls[1]["note"]["codes"]) == 1
    html = page.content.decode()
    assert shop.api_key not in html and "x" * 40 not in html
    assert [event.event_id for event in page.context["usage"]] == ["ok1"]
    assert "1 accepted" in html and "1 rejected" in html
    errors = login(shop).get("/developers/explorer/?outcome=error").context["calls"]
    assert [c["status"] for c in errors] == [401]
    assert login(shop).get("/developers/explorer/?customer=c2").context["usage"] == []
    # another tenant's log holds none of these calls
    assert login(beta).get("/developers/explorer/").context["calls"] == []
