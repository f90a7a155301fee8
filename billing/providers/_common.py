"""What the hosted providers' adapters share: status names mapped onto ours, timestamps, JSON bodies."""

from __future__ import annotations

import datetime as dt
import json

from django.utils.dateparse import parse_datetime

from billing.providers.base import WebhookVerificationFailed

SUBSCRIPTION_STATUS = {
    "incomplete": "incomplete",
    "incomplete_expired": "expired",
    "trialing": "trialing",
    "on_trial": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "paused": "paused",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "expired",
    "revoked": "canceled",
}


def json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationFailed("The signed body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationFailed("The signed body is not a JSON object.")
    return payload


def timestamp(value) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return parse_datetime(value) if isinstance(value, str) and value else None
