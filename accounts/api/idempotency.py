"""`Idempotency-Key` for POSTs that create something.

The record is inserted in the same transaction as the view's writes. A second request with the
same key blocks on the unique index until the first commits, then replays its stored response
(`Idempotent-Replayed: true`); if the first rolled back, the second simply runs. The same key with a
different method, path or body is a 409. 5xx outcomes are not stored (the whole transaction rolls
back), so a retry after a server error runs again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from accounts.models import IdempotencyRecord
from kernel.errors import ApplicationError

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status_code = 409


class InvalidIdempotencyKey(ApplicationError):
    code = "invalid_idempotency_key"


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.get_full_path().encode())
    digest.update(b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _begin(*, key: str, fingerprint: str, request) -> tuple[IdempotencyRecord, bool]:
    now = timezone.now()
    expires = now + dt.timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                key=key,
                request_hash=fingerprint,
                method=request.method,
                path=request.path[:512],
                expires_at=expires,
            )
        return record, True
    except IntegrityError:
        record = IdempotencyRecord.objects.select_for_update().get(key=key)
    if record.expires_at <= now:  # an expired key is free to be used again
        record.request_hash, record.method, record.path = fingerprint, request.method, request.path[:512]
        record.status_code, record.response_body, record.expires_at = None, None, expires
        record.save()
        return record, True
    return record, False


def idempotency_exempt(reason: str):
    """Mark a POST that creates nothing (a check, a verification): Idempotency-Key is ignored."""

    def decorator(view_method):
        view_method.idempotency_exempt = reason
        return view_method

    return decorator


def idempotent(view_method=None, *, redact: tuple[str, ...] = ()):
    """Decorate an APIView's `post`: apply once per `Idempotency-Key` (optional header).

    `redact` names response fields that hold a secret shown once (a new API key): they are stored
    as null, so a replay says what was created but never reveals the secret again.
    """
    if view_method is None:
        return lambda method: idempotent(method, redact=redact)

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidIdempotencyKey(f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters.")
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            record, fresh = _begin(key=key, fingerprint=fingerprint, request=request)
            if not fresh:
                if record.request_hash != fingerprint:
                    raise IdempotencyKeyReused(
                        f"This {HEADER} was already used with a different request.",
                        details={"key": key, "original_path": record.path},
                    )
                return Response(
                    record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"}
                )
            response = view_method(self, request, *args, **kwargs)
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            body = response.data
            if redact and isinstance(body, dict):
                body = {name: (None if name in redact else value) for name, value in body.items()}
            record.status_code = response.status_code
            record.response_body = body
            record.save(update_fields=["status_code", "response_body"])
            return response

    wrapper.idempotent = True
    return wrapper
