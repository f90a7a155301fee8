"""The Developers page (`/developers/`): integrator keys, webhook endpoints with their delivery log
and resend, the inbox of provider events with filters and replay, and an explorer of recent API
calls and usage events.

Owners manage keys (as before at /settings/api-keys/); owners and admins act on endpoints, deliveries
and the inbox; support reads everything but the keys. Actions are POST-redirect-GET with a flash
message; resend and replay carry a one-time token so a double click acts once.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.exceptions import AccountsError
from accounts.forms import ApiKeyCreateForm
from accounts.permissions import role_required
from accounts.roles import Role
from accounts.selectors import api_key_list
from accounts.services import api_key_create, api_key_revoke, api_key_rotate
from billing.events.services import (
    EndpointInvalid,
    EndpointLimitReached,
    delivery_resend,
    endpoint_create,
    endpoint_delete,
    endpoint_set_active,
)
from billing.inbox.services import inbox_replay
from console.developers import selectors
from console.developers.forms import (
    DeliveryFilterForm,
    EndpointCreateForm,
    ExplorerFilterForm,
    InboxFilterForm,
)

READERS = (Role.OWNER, Role.ADMIN, Role.SUPPORT)
WRITERS = (Role.OWNER, Role.ADMIN)
ONCE_SECONDS = 3600


def _context(request, tab: str, **extra) -> dict:
    user = request.user
    return {
        "tab": tab,
        "can_write": user.is_superuser or user.role in WRITERS,
        "can_keys": user.is_superuser or user.role == Role.OWNER,
        "once": secrets.token_urlsafe(16),
        **extra,
    }


def _first_click(request) -> bool:
    """True the first time a form's one-time token is posted (by this user, in this tenant): a
    double click or a re-posted form acts once. A post without a token acts."""
    token = request.POST.get("once", "")[:64]
    if not token:
        return True
    return cache.add(f"console-once:{request.user.pk}:{token}", 1, ONCE_SECONDS)


def _int(value) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _id(value) -> int:
    number = _int(value)
    if number is None:
        raise Http404
    return number


@require_GET
@role_required(*READERS)
def home(request):
    summary = selectors.developers_summary()
    calls = selectors.api_calls_recent(limit=10)
    return render(
        request, "console/developers/home.html", _context(request, "home", summary=summary, calls=calls)
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.OWNER)
def keys(request):
    form, new_secret = ApiKeyCreateForm(), None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            form = ApiKeyCreateForm(request.POST)
            if form.is_valid():
                key, new_secret = api_key_create(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    created_by=request.user,
                )
                messages.success(request, f"Created {key.prefix}…: copy the secret now.")
                form = ApiKeyCreateForm()
        elif action in {"revoke", "rotate"}:
            key = selectors.api_key_get(key_id=_id(request.POST.get("key_id")))
            try:
                if action == "revoke":
                    api_key_revoke(api_key=key)
                    messages.success(request, f"Revoked {key.prefix}…")
                    return redirect("developers-keys")
                rotated, new_secret = api_key_rotate(api_key=key, created_by=request.user)
                messages.success(
                    request, f"Rotated {key.prefix}… into {rotated.prefix}…: copy the secret now."
                )
            except AccountsError as exc:
                messages.error(request, exc.message)
                return redirect("developers-keys")
        else:
            messages.error(request, "Unknown action.")
            return redirect("developers-keys")
    grace = round(settings.API_KEY_ROTATION_GRACE_SECONDS / 3600, 1)
    context = _context(
        request, "keys", form=form, keys=api_key_list(), new_secret=new_secret, grace_hours=grace
    )
    response = render(request, "console/developers/keys.html", context)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def legacy_api_keys(request):
    """The keys' former address: GET redirects, POST is re-sent there with its method (307)."""
    target = reverse("developers-keys")
    if request.method == "POST":
        response = redirect(target)
        response.status_code = 307
        return response
    return redirect(target)


@require_http_methods(["GET", "POST"])
@role_required(*READERS)
def webhooks(request):
    form, new_secret, created = EndpointCreateForm(), None, None
    if request.method == "POST":
        if not (request.user.is_superuser or request.user.role in WRITERS):
            messages.error(request, "Your role can read webhook endpoints but not add them.")
            return redirect("developers-webhooks")
        form = EndpointCreateForm(request.POST)
        if form.is_valid():
            try:
                created, new_secret = endpoint_create(**form.cleaned_data)
            except (EndpointInvalid, EndpointLimitReached) as exc:
                form.add_error("url" if isinstance(exc, EndpointInvalid) else None, exc.message)
            else:
                messages.success(request, f"Added {created.url}: copy its signing secret now.")
                form = EndpointCreateForm()
    context = _context(
        request,
        "webhooks",
        form=form,
        endpoints=selectors.endpoint_list(),
        new_secret=new_secret,
        created=created,
    )
    response = render(request, "console/developers/webhooks.html", context)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@require_GET
@role_required(*READERS)
def endpoint_detail(request, endpoint_id: int):
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
    filters = DeliveryFilterForm(request.GET)
    values = filters.values()
    page = selectors.delivery_list(
        endpoint=endpoint, status=values.get("status", ""), before=values.get("before")
    )
    context = _context(
        request, "webhooks", endpoint=endpoint, filters=filters, page=page, status=values.get("status", "")
    )
    return render(request, "console/developers/endpoint.html", context)


@require_POST
@role_required(*WRITERS)
def endpoint_action(request, endpoint_id: int, action: str):
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
    if action == "delete":
        if endpoint_delete(endpoint_id=endpoint.pk):
            messages.success(request, f"Deleted {endpoint.url} and its delivery log.")
        return redirect("developers-webhooks")
    if action not in {"disable", "enable"}:
        raise Http404
    endpoint_set_active(endpoint_id=endpoint.pk, active=action == "enable")
    messages.success(
        request,
        f"Enabled {endpoint.url}: waiting deliveries go out now."
        if action == "enable"
        else f"Disabled {endpoint.url}: it gets no new events; pending deliveries wait until you enable it.",
    )
    return redirect("developers-endpoint", endpoint_id=endpoint.pk)


@require_GET
@role_required(*READERS)
def delivery_detail(request, endpoint_id: int, delivery_id: int):
    delivery = selectors.delivery_get(endpoint_id=endpoint_id, delivery_id=delivery_id)
    context = _context(
        request,
        "webhooks",
        delivery=delivery,
        endpoint=delivery.endpoint,
        attempts=selectors.delivery_attempts(delivery=delivery),
        payload=selectors.json_preview(delivery.event.payload),
    )
    return render(request, "console/developers/delivery.html", context)


@require_POST
@role_required(*WRITERS)
def delivery_resend_view(request, endpoint_id: int, delivery_id: int):
    delivery = selectors.delivery_get(endpoint_id=endpoint_id, delivery_id=delivery_id)
    if _first_click(request):
        delivery_resend(delivery=delivery)
        messages.success(request, f"Resending {delivery.event_id} to {delivery.endpoint.url}.")
    else:
        messages.info(request, f"{delivery.event_id} is already being resent.")
    return redirect("developers-delivery", endpoint_id=endpoint_id, delivery_id=delivery_id)


@require_GET
@role_required(*READERS)
def inbox(request):
    filters = InboxFilterForm(request.GET, providers=selectors.inbox_providers())
    values = filters.values()
    page = selectors.inbox_list(**values)
    query = {
        name: value for name, value in request.GET.items() if name != "before" and name in filters.fields
    }
    return render(
        request,
        "console/developers/inbox.html",
        _context(request, "inbox", filters=filters, page=page, query=query),
    )


@require_GET
@role_required(*READERS)
def inbox_detail(request, inbox_id: int):
    event = selectors.inbox_event_get(inbox_id=inbox_id)
    context = _context(
        request,
        "inbox",
        event=event,
        payload=selectors.json_preview(event.payload),
        replayable=event.status in selectors.INBOX_REPLAYABLE,
    )
    return render(request, "console/developers/inbox_event.html", context)


@require_POST
@role_required(*WRITERS)
def inbox_replay_view(request, inbox_id: int):
    event = selectors.inbox_event_get(inbox_id=inbox_id)
    if not _first_click(request):
        messages.info(request, f"{event.provider} event {event.event_id} is already queued again.")
    elif inbox_replay(inbox_ids=[event.pk]):
        messages.success(request, f"Replaying {event.provider} event {event.event_id}.")
    else:
        messages.warning(
            request, f"Only failed, dead or unmatched events replay; this one is {event.status}."
        )
    return redirect("developers-inbox-event", inbox_id=event.pk)


@require_GET
@role_required(*READERS)
def explorer(request):
    filters = ExplorerFilterForm(request.GET)
    values = filters.values()
    calls = selectors.api_calls_recent(outcome=values.get("outcome", ""), method=values.get("method", ""))
    usage = selectors.usage_events_recent(customer=values.get("customer", ""))
    context = _context(
        request,
        "explorer",
        filters=filters,
        calls=calls,
        ingest_calls=selectors.ingest_calls_recent(calls=calls)[:20],
        usage=usage,
        usage_window_hours=int(selectors.USAGE_WINDOW.total_seconds() // 3600),
        log_max=settings.REQUEST_LOG_MAX,
    )
    return render(request, "console/developers/explorer.html", context)
