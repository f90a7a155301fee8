"""End-user API keys: created, rotated, revoked and verified (hashed; the secret shown once)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from billing.entitlements import cache
from billing.entitlements.exceptions import (
    CustomerKeyInactive,
)
from billing.entitlements.models import CustomerApiKey
from billing.entitlements.ratelimit import decision_from_reply
from billing.entitlements.selectors import entitlement_snapshot
from billing.entitlements.services.check import Decision, _fail_open, decide
from billing.memberships.models import Customer
from kernel import keycache

logger = logging.getLogger("billing.entitlements.services")


# --- customer API keys --------------------------------------------------------------------------


def customer_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def customer_key_create(*, customer: Customer, name: str = "") -> tuple[CustomerApiKey, str]:
    """`sk-<tenant slug>-<32 hex>` (128 random bits). Returns the row and the secret, shown once."""
    raw = f"sk-{connection.tenant.slug}-{secrets.token_hex(16)}"
    key = CustomerApiKey.objects.create(
        customer=customer,
        name=name.strip()[:100],
        prefix=raw[: len(raw) - 26],
        key_hash=customer_key_hash(raw),
    )
    return key, raw


def customer_key_revoke(*, key: CustomerApiKey) -> CustomerApiKey:
    with transaction.atomic():
        key = CustomerApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        keycache.forget_on_commit("ck", key.key_hash)
    return key


def customer_key_rotate(*, key: CustomerApiKey) -> tuple[CustomerApiKey, str]:
    """Replace a key: the new one works at once, the old one stops at once (end-user keys have no
    grace period; an integrator that needs one creates a second key first)."""
    with transaction.atomic():
        old = CustomerApiKey.objects.select_for_update().select_related("customer").get(pk=key.pk)
        if old.revoked_at is not None:
            raise CustomerKeyInactive("A revoked key cannot be rotated.", details={"id": old.pk})
        new, raw = customer_key_create(customer=old.customer, name=old.name)
        old.revoked_at = timezone.now()
        old.rotated_to = new
        old.save(update_fields=["revoked_at", "rotated_to"])
        keycache.forget_on_commit("ck", old.key_hash)
    return new, raw


@dataclass
class Verification:
    valid: bool
    customer: str | None = None
    key_id: int | None = None
    snapshot: dict | None = None
    decision: Decision | None = None


def customer_key_verify(
    *,
    raw_key: str,
    feature: str | None = None,
    quantity: int = 1,
    prefetched: cache.VerifyPrefetched | None = None,
) -> Verification:
    """Is this end-user key valid here, and (with `feature`) may its customer use the feature now?
    One call per gateway request: key lookup, entitlement and rate limit (`prefetched`: what the
    API read in its single Redis round trip)."""
    if not isinstance(raw_key, str) or not raw_key.startswith("sk-") or len(raw_key) > 200:
        return Verification(valid=False)
    hashed = customer_key_hash(raw_key)
    if prefetched is not None and prefetched.key_read:
        if prefetched.from_copies:
            keycache.note_used("ck", hashed, prefetched.now)
        now, entry, cached, rate_reply = (
            prefetched.now,
            prefetched.key_entry,
            prefetched.snapshot,
            prefetched.rate,
        )
        if entry is None:
            cached = None
    else:
        now = time.time()
        entry, cached, rate_reply = cache.read_key_and_snapshot(
            "ck", hashed, feature=feature, quantity=quantity, now=now
        )
    if entry is None:
        row = (
            CustomerApiKey.objects.filter(key_hash=hashed, revoked_at__isnull=True)
            .select_related("customer")
            .only("id", "customer__external_id")
            .first()
        )
        entry = {"id": row.pk, "customer": row.customer.external_id} if row else keycache.MISSING
        keycache.put("ck", hashed, entry)
        cached = None
    if entry.get("missing"):
        return Verification(valid=False)
    snapshot = entitlement_snapshot(external_id=entry["customer"], cached=cached, now=now)
    if snapshot is None:  # the customer was deleted under a cached key
        return Verification(valid=False)
    result = Verification(valid=True, customer=entry["customer"], key_id=entry["id"], snapshot=snapshot)
    if feature is not None:
        rate = decision_from_reply(rate_reply) if rate_reply else None
        result.decision = decide(
            snapshot=snapshot, feature=feature, quantity=quantity, fail_open=_fail_open(), rate=rate
        )
    return result
