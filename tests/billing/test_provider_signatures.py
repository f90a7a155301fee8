"""Every adapter verifies its provider's real signature scheme (signed here with the providers' own
code where they ship one) and maps subscription events onto memberships through the same inbox."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time

import pytest
import stripe
from django_tenants.utils import tenant_context
from standardwebhooks.webhooks import Webhook

from billing.inbox.models import InboxEvent
from billing.memberships.models import Membership
from billing.providers.services import provider_account_upsert
from tests.billing.test_webhooks_in import process_all

NOW = int(time.time())


def stripe_delivery(secret: str, *, status="active", event_id="evt_stripe_1"):
    payload = json.dumps({
        "id": event_id, "object": "event", "type": "customer.subscription.updated", "created": NOW,
        "data": {"object": {
            "id": "sub_S1", "object": "subscription", "status": status, "customer": "cus_1", "cancel_at_period_end": False,
            "metadata": {"monetize_customer": "c1"},
            "items": {"data": [{"quantity": 2, "current_period_start": NOW, "current_period_end": NOW + 2592000,
                                "price": {"id": "price_1", "lookup_key": "team-monthly"}}]},
        }},
    })  # fmt: skip
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)  # Stripe's own signer
    return payload.encode(), {"HTTP_STRIPE_SIGNATURE": header}


def polar_delivery(secret: str, *, modified="2026-11-01T12:00:00Z"):
    body = json.dumps({
        "type": "subscription.updated", "timestamp": modified,
        "data": {"id": "polar_sub_1", "status": "active", "customer_id": "pc_1", "modified_at": modified,
                 "current_period_start": "2026-11-01T00:00:00Z", "current_period_end": "2026-12-01T00:00:00Z",
                 "cancel_at_period_end": False, "metadata": {"monetize_customer": "c1", "monetize_price": "pro-monthly"}},
    })  # fmt: skip
    msg_id = "msg_" + secrets.token_hex(8)
    signature = Webhook(secret).sign(msg_id, dt.datetime.now(dt.UTC), body)  # Standard Webhooks' signer
    return body.encode(), {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(time.time())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def lemon_delivery(secret: str):
    body = json.dumps({
        "meta": {"event_name": "subscription_updated", "custom_data": {"monetize_customer": "c1", "monetize_price": "team-yearly"}},
        "data": {"type": "subscriptions", "id": "ls_1", "attributes": {"status": "active", "customer_id": 9, "cancelled": False,
                 "renews_at": "2027-11-01T00:00:00Z", "updated_at": "2026-11-01T12:00:00Z"}},
    }).encode()  # fmt: skip
    return body, {"HTTP_X_SIGNATURE": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def post(fixture, provider, body, meta):
    return fixture.client().post(f"/webhooks/{provider}/", body, content_type="application/json", **meta)


@pytest.mark.parametrize(
    "provider, secret, delivery, tier, quantity",
    [
        ("stripe", "whsec_" + secrets.token_hex(16), stripe_delivery, "team", 2),
        ("polar", "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), polar_delivery, "pro", 1),
        ("lemonsqueezy", secrets.token_hex(16), lemon_delivery, "team", 1),
    ],
)
def test_verified_event_becomes_a_membership(ci_catalog, provider, secret, delivery, tier, quantity):
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider=provider, webhook_secret=secret)
    body, meta = delivery(secret)
    assert post(ci_catalog, provider, body, meta).status_code == 200
    assert post(ci_catalog, provider, body, meta).json()["duplicate"] is True
    process_all(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        membership = Membership.objects.get(provider=provider)
        assert (membership.tier.code, membership.status, membership.quantity) == (tier, "active", quantity)
        assert membership.customer.external_id == "c1"


@pytest.mark.parametrize(
    "provider, delivery",
    [("stripe", stripe_delivery), ("polar", polar_delivery), ("lemonsqueezy", lemon_delivery)],
)
def test_wrong_secret_or_tampered_body_is_400(ci_catalog, provider, delivery):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider=provider, webhook_secret=secret)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body, meta = delivery(other)
    assert post(ci_catalog, provider, body, meta).status_code == 400
    body, meta = delivery(secret)
    assert post(ci_catalog, provider, body.replace(b"active", b"paused"), meta).status_code == 400
    with tenant_context(ci_catalog.tenant):
        assert not InboxEvent.objects.exists()


def test_stripe_old_timestamp_is_refused(ci_catalog):
    secret = "whsec_" + secrets.token_hex(16)
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="stripe", webhook_secret=secret)
    body, _ = stripe_delivery(secret)
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=NOW - 3600)
    assert post(ci_catalog, "stripe", body, {"HTTP_STRIPE_SIGNATURE": header}).status_code == 400


def test_polar_accepts_either_signature_during_a_secret_rotation(ci_catalog):
    old = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    new = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="polar", webhook_secret=new)
    body, meta = polar_delivery(old)
    signed_new = Webhook(new).sign(
        meta["HTTP_WEBHOOK_ID"],
        dt.datetime.fromtimestamp(int(meta["HTTP_WEBHOOK_TIMESTAMP"]), dt.UTC),
        body.decode(),
    )
    meta["HTTP_WEBHOOK_SIGNATURE"] = (
        meta["HTTP_WEBHOOK_SIGNATURE"] + " " + signed_new
    )  # both, as Polar sends them
    assert post(ci_catalog, "polar", body, meta).status_code == 200


def test_only_paid_orders_are_recorded(ci_catalog):
    from billing.memberships.models import Payment

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="polar", webhook_secret=secret)
    for kind in ("order.created", "order.paid", "order.paid"):
        body = json.dumps({"type": kind, "timestamp": "2026-11-01T12:00:00Z", "data": {
            "id": "ord_1", "total_amount": 1900, "currency": "usd", "created_at": "2026-11-01T12:00:00Z",
            "modified_at": "2026-11-01T12:00:0" + ("0" if kind == "order.created" else "1") + "Z",
            "metadata": {"monetize_customer": "c1"}}})  # fmt: skip
        msg_id = "msg_" + secrets.token_hex(8)
        signature = Webhook(secret).sign(msg_id, dt.datetime.now(dt.UTC), body)
        meta = {
            "HTTP_WEBHOOK_ID": msg_id,
            "HTTP_WEBHOOK_TIMESTAMP": str(int(time.time())),
            "HTTP_WEBHOOK_SIGNATURE": signature,
        }
        assert post(ci_catalog, "polar", body.encode(), meta).status_code == 200
    process_all(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        assert list(Payment.objects.values_list("kind", "amount", "currency")) == [("charge", 1900, "usd")]
        assert list(InboxEvent.objects.order_by("id").values_list("status", flat=True)) == [
            "ignored",
            "applied",
        ]
