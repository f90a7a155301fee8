"""Webhooks out: events to the integrator's endpoints, signed per Standard Webhooks, retried.

event_publish stores the event and one Delivery per interested endpoint, and enqueues them on
commit. delivery_attempt POSTs one delivery (`webhook-id` = event id, `webhook-timestamp`,
`webhook-signature` from the standardwebhooks library with the endpoint's `whsec_` secret); a
2xx is success, anything else is retried after ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h and then
the delivery is dead (resend by hand). One customer's events reach an endpoint in order: a
delivery waits while an older one of the same customer to the same endpoint is not through.
An endpoint is disabled after WEBHOOK_OUT_DISABLE_AFTER failed attempts in a row.

Fair across tenants: deliveries go to their own Celery queue (`deliveries`), and a tenant has at
most WEBHOOK_OUT_TENANT_IN_FLIGHT pending deliveries in it at once. The rest wait in the table, and
deliveries_admit lets the next ones in (oldest first) as each attempt finishes, so one tenant's
fan-out of thousands of deliveries puts only that many messages ahead of another tenant's; the
sweep admits what a lost message or a crash left behind. A tenant has at most WEBHOOK_ENDPOINTS_MAX
endpoints.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import time

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_tenants.utils import tenant_context
from standardwebhooks.webhooks import Webhook

from billing.events.models import Delivery, DeliveryAttempt, DeliveryStatus, OutboundEvent, WebhookEndpoint
from kernel.crypto import decrypt, encrypt
from kernel.enqueue import enqueue
from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)
RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
DELETED = "deleted"  # what delivery_attempt answers when its endpoint was deleted meanwhile


class EndpointInvalid(ApplicationError):
    code = "invalid_endpoint"


class EndpointLimitReached(ApplicationError):
    code = "endpoint_limit_reached"
    status_code = 409


def _lock(name: str) -> None:
    """A transaction-scoped lock on `name` in the current tenant's schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", [":" + name])


def _enqueue(delivery_id: int, *, countdown: int | None = None) -> None:
    from billing.events.tasks import deliver

    enqueue(deliver, args=(delivery_id,), countdown=countdown, fallback="events.sweep will")


def endpoint_create(
    *, url: str, event_types: list[str] | None = None, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once, stored encrypted)."""
    if not url.startswith(("https://", "http://")):
        raise EndpointInvalid("The URL must be http(s).", details={"url": url})
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    limit = settings.WEBHOOK_ENDPOINTS_MAX
    with transaction.atomic():
        _lock("webhook-endpoints")  # two concurrent creates must not both take the last place
        if WebhookEndpoint.objects.count() >= limit:
            raise EndpointLimitReached(
                f"A tenant can have at most {limit} webhook endpoints; delete one first.",
                details={"limit": limit},
            )
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            description=description,
            event_types=list(event_types or []),
            secret_encrypted=encrypt(secret),
        )
    return endpoint, secret


def endpoint_delete(*, endpoint_id: int) -> bool:
    """Delete an endpoint with its deliveries and their attempts; False if it is already gone.

    The endpoint row is locked first, as delivery_attempt locks it, so a delivery committing its
    attempt finishes before the cascade collects the rows (else the attempt it inserted meanwhile
    pointed at a deleted delivery: a foreign-key violation, a 500)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None:
            return False
        endpoint.delete()
        _admit_on_commit()  # its queued deliveries leave room for the tenant's others
    return True


def endpoint_set_active(*, endpoint_id: int, active: bool) -> WebhookEndpoint | None:
    """Pause an endpoint (it gets no new events; its pending deliveries wait in the table) or enable
    it again, which clears its failure streak and admits what waited; None if it is gone. Setting
    the state it already has is a no-op."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None or endpoint.is_active == active:
            return endpoint
        endpoint.is_active = active
        endpoint.consecutive_failures = 0 if active else endpoint.consecutive_failures
        endpoint.disabled_reason = "" if active else "disabled by hand"
        endpoint.save(update_fields=["is_active", "consecutive_failures", "disabled_reason"])
        if active:
            _admit_on_commit()
    return endpoint


def active_endpoints() -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(is_active=True))


def event_publish(
    *, type: str, payload: dict, customer: str = "", endpoints: list[WebhookEndpoint] | None = None
) -> OutboundEvent | None:
    """Record an event and deliver it to every active endpoint that wants it (after commit).
    `endpoints`: the active endpoints when the caller publishes several events at once."""
    endpoints = [e for e in (active_endpoints() if endpoints is None else endpoints) if e.wants(type)]
    if not endpoints:
        return None
    event = OutboundEvent.objects.create(
        id="msg_" + secrets.token_hex(12),
        type=type,
        customer=customer,
        payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
    )
    Delivery.objects.bulk_create(
        [Delivery(endpoint=endpoint, event=event, customer=customer) for endpoint in endpoints]
    )
    _admit_on_commit()
    return event


def events_publish_many(events: list[tuple[str, str, dict]]) -> int:
    """Record many events at once -- (type, customer, payload) each, in order -- with their
    deliveries, in three statements and one admission after commit (a billing run publishes
    thousands). Returns the number of events recorded."""
    endpoints = active_endpoints()
    rows, deliveries = [], []
    for kind, customer, payload in events:
        wanted = [e for e in endpoints if e.wants(kind)]
        if not wanted:
            continue
        event = OutboundEvent(
            id="msg_" + secrets.token_hex(12),
            type=kind,
            customer=customer,
            payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
        )
        rows.append(event)
        deliveries += [Delivery(endpoint=endpoint, event=event, customer=customer) for endpoint in wanted]
    if rows:
        OutboundEvent.objects.bulk_create(rows, batch_size=1000)
        Delivery.objects.bulk_create(deliveries, batch_size=1000)
        _admit_on_commit()
    return len(rows)


def _admit_on_commit() -> None:
    tenant = connection.tenant  # the callback runs after commit, whatever schema is active then

    def admit() -> None:
        try:
            with tenant_context(tenant):
                deliveries_admit()
        except Exception:  # the caller's work is committed; the sweep admits what is left
            logger.warning("could not admit deliveries; the sweeper will", exc_info=True)

    transaction.on_commit(admit)


def deliveries_admit(*, now: dt.datetime | None = None) -> list[int]:
    """Enqueue this tenant's oldest pending deliveries that may go now, keeping at most
    WEBHOOK_OUT_TENANT_IN_FLIGHT of them in the broker's queue. A delivery behind an older open one
    of the same customer to the same endpoint is left for later (its predecessor's end admits it);
    one admitted longer than WEBHOOK_SWEEP_AFTER_SECONDS ago and still pending is taken as lost."""
    now = now or timezone.now()
    lost = now - dt.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    with transaction.atomic():
        _lock("deliveries-admit")
        pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
        room = settings.WEBHOOK_OUT_TENANT_IN_FLIGHT - pending.filter(queued_at__gt=lost).count()
        if room <= 0:
            return []
        older_open = Delivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            customer=OuterRef("customer"),
            status__in=OPEN,
            id__lt=OuterRef("id"),
        )
        ids = list(
            pending.filter(endpoint__is_active=True)
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=lost))
            .filter(Q(customer="") | ~Exists(older_open))
            .order_by("id")
            .values_list("pk", flat=True)[:room]
        )
        Delivery.objects.filter(pk__in=ids).update(queued_at=now)
    for delivery_id in ids:
        _enqueue(delivery_id)
    return ids


def _body(event: OutboundEvent) -> str:
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.payload},
        separators=(",", ":"),
    )


def signed_request(delivery: Delivery) -> tuple[str, dict[str, str]]:
    body = _body(delivery.event)
    now = dt.datetime.now(dt.UTC)
    signature = Webhook(decrypt(delivery.endpoint.secret_encrypted)).sign(delivery.event_id, now, body)
    headers = {
        "content-type": "application/json",
        "user-agent": "Monetize-Webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body, headers


def _blocked(delivery: Delivery) -> bool:
    """An older delivery of the same customer to the same endpoint is not through yet."""
    if not delivery.customer:
        return False
    return Delivery.objects.filter(
        endpoint_id=delivery.endpoint_id, customer=delivery.customer, status__in=OPEN, id__lt=delivery.id
    ).exists()


def _claim(delivery_id: int) -> Delivery | str:
    """Lock the delivery briefly and claim it for one attempt (no transaction stays open while the
    HTTP call runs). Returns the delivery, or why it is not attempted now."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint", "event")
            .filter(pk=delivery_id)
            .first()
        )
        now = timezone.now()
        if delivery is None or (delivery.claimed_until and delivery.claimed_until > now):
            return "busy"  # another worker is on it
        if delivery.status not in OPEN or not delivery.endpoint.is_active:
            return delivery.status
        if _blocked(delivery):
            # its predecessor's end admits it again; meanwhile it takes no place in the queue
            delivery.queued_at = None
            delivery.save(update_fields=["queued_at"])
            return "waiting"
        delivery.claimed_until = now + dt.timedelta(seconds=settings.WEBHOOK_OUT_TIMEOUT_SECONDS + 30)
        delivery.save(update_fields=["claimed_until"])
    return delivery


def _post(delivery: Delivery, client: httpx.Client | None) -> tuple[int | None, str, int]:
    body, headers = signed_request(delivery)
    started = time.monotonic()
    code, error = None, ""
    try:
        http = client or httpx.Client(timeout=settings.WEBHOOK_OUT_TIMEOUT_SECONDS)
        try:
            code = http.post(delivery.endpoint.url, content=body, headers=headers).status_code
        finally:
            if client is None:
                http.close()
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:500]
    return code, error, int((time.monotonic() - started) * 1000)


def delivery_attempt(*, delivery_id: int, client: httpx.Client | None = None) -> str:
    """Try one delivery now. Returns its status afterwards. Safe to call twice or concurrently."""
    claimed = _claim(delivery_id)
    if isinstance(claimed, str):
        return claimed
    code, error, duration = _post(claimed, client)
    with transaction.atomic():
        # endpoint first, then delivery: the order endpoint_delete takes them in, so a delete
        # waits for this commit (or goes first, and then there is nothing left to record)
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=claimed.endpoint_id).first()
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first() if endpoint else None
        if delivery is None:
            _admit_on_commit()  # its place in the queue went with it
            return DELETED
        delivery.endpoint = endpoint
        now = timezone.now()
        DeliveryAttempt.objects.create(delivery=delivery, status_code=code, error=error, duration_ms=duration)
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error, delivery.last_attempt_at = code, error, now
        delivery.claimed_until = None
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.succeeded_at, delivery.next_attempt_at = (
                DeliveryStatus.SUCCEEDED,
                now,
                None,
            )
            endpoint.consecutive_failures = 0
        else:
            endpoint.consecutive_failures += 1
            if delivery.attempts > len(RETRY_SECONDS):
                delivery.status, delivery.next_attempt_at = DeliveryStatus.DEAD, None
            else:
                delay = RETRY_SECONDS[delivery.attempts - 1]
                delivery.status, delivery.next_attempt_at = (
                    DeliveryStatus.FAILED,
                    now + dt.timedelta(seconds=delay),
                )
                transaction.on_commit(lambda: _enqueue(delivery.pk, countdown=delay))
            if endpoint.consecutive_failures >= settings.WEBHOOK_OUT_DISABLE_AFTER and endpoint.is_active:
                endpoint.is_active = False
                endpoint.disabled_reason = (
                    f"disabled after {endpoint.consecutive_failures} failed attempts in a row"
                )
        endpoint.save(update_fields=["consecutive_failures", "is_active", "disabled_reason"])
        delivery.save()
        # its place in the queue is free (and its successor, if any, may go): admit the next
        _admit_on_commit()
    return delivery.status


def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send again by hand (a dead or already succeeded delivery gets a fresh set of attempts)."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, None
        delivery.queued_at = None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "queued_at"])
        _admit_on_commit()
    return delivery


def deliveries_sweep(*, now: dt.datetime | None = None) -> int:
    """Re-enqueue failed deliveries due for a retry whose message is lost, and admit pending ones
    (those never admitted, or admitted and lost)."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(
            endpoint__is_active=True, status=DeliveryStatus.FAILED, next_attempt_at__lte=now
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids) + len(deliveries_admit(now=now))
