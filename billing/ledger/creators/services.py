"""Creators' writes: the profile (made by integrators, or for a user with the creator role), payout
onboarding at a provider's connected-account flow, and their channel tiers."""

from __future__ import annotations

import datetime as dt
import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.ledger.creators.exceptions import (
    CreatorExists,
    CreatorInvalid,
    CreatorTierInUse,
    CreatorTierInvalid,
    OnboardingInvalid,
)
from billing.ledger.creators.models import HANDLE_PATTERN, Creator, PayoutStatus
from billing.ledger.creators.selectors import creator_tier_get
from billing.memberships.models import LIVE_STATUSES, Membership
from billing.tiers.models import Interval, Price, Tier

_HANDLE = re.compile(HANDLE_PATTERN)
CREATOR_TIER_INTERVALS = (Interval.MONTH, Interval.YEAR)


def creator_create(*, handle: str, display_name: str, email: str = "", user=None) -> Creator:
    """A new creator (payout onboarding not started). A handle that is taken is a 409."""
    if not _HANDLE.match(handle or ""):
        raise CreatorInvalid(
            "A handle is 2-40 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
            details={"field": "handle"},
        )
    if not (display_name or "").strip():
        raise CreatorInvalid("A creator needs a display name.", details={"field": "display_name"})
    try:
        with transaction.atomic():
            return Creator.objects.create(
                handle=handle, display_name=display_name.strip()[:200], email=email, user=user
            )
    except IntegrityError:
        raise CreatorExists(f"The handle '{handle}' is taken.", details={"handle": handle}) from None


def creator_for_user(*, user) -> Creator:
    """The creator profile of a user with the creator role, made on first use from their email
    (a free handle derived from it)."""
    existing = Creator.objects.filter(user=user).first()
    if existing is not None:
        return existing
    base = slugify((user.email or "").split("@")[0])[:32].strip("-_") or "creator"
    base = base if len(base) >= 2 else f"{base}-c"
    for n in range(50):
        handle = base if n == 0 else f"{base}-{n + 1}"
        try:
            return creator_create(
                handle=handle, display_name=getattr(user, "name", "") or base, email=user.email, user=user
            )
        except CreatorExists:
            existing = Creator.objects.filter(user=user).first()  # a concurrent first use made it
            if existing is not None:
                return existing
    raise CreatorExists("No free handle for this user.", details={"user": user.pk})


def creator_onboarding_start(*, creator: Creator, provider: str, return_url: str) -> str:
    """The URL where the creator sets up their payout account at `provider` (its connected-account
    flow; the sandbox's activates at once). Their account is made there once (kept, and reused by
    later links); their status becomes pending until the provider says it is active."""
    from billing.providers.base import ConnectOnboardingRequest
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    if creator.payout_provider and creator.payout_provider != provider and creator.provider_account_id:
        raise OnboardingInvalid(
            f"{creator.handle} is onboarded at {creator.payout_provider}.",
            details={"provider": provider, "onboarded_at": creator.payout_provider},
        )
    account = provider_account_for_checkout(provider=provider)
    adapter = provider_for(account)
    link = getattr(adapter, "connect_onboarding", None)
    if link is None:
        from billing.providers.base import ProviderNotSupported

        raise ProviderNotSupported(
            f"{account.get_provider_display()} has no connected-account onboarding here.",
            details={"provider": provider},
        )
    with transaction.atomic():
        creator = Creator.objects.select_for_update().get(pk=creator.pk)
        result = link(
            ConnectOnboardingRequest(
                creator=creator.handle,
                creator_key=f"creator-{creator.pk}",
                email=creator.email,
                display_name=creator.display_name,
                account_id=creator.provider_account_id,
                return_url=return_url,
                refresh_url=return_url,
            )
        )
        creator.payout_provider, creator.provider_account_id = provider, result.account_id
        if creator.payout_status in (PayoutStatus.NOT_STARTED, PayoutStatus.RESTRICTED):
            creator.payout_status = PayoutStatus.PENDING
        creator.save(update_fields=["payout_provider", "provider_account_id", "payout_status", "updated_at"])
    return result.url


def creator_account_update(
    *, provider: str, account_id: str, status: str, occurred_at: dt.datetime | None = None
) -> Creator | None:
    """The provider says what a connected account may do now (Stripe's `account.updated`, the
    sandbox's activation): the creator's payout status follows (pending, active or restricted),
    unless a newer event was applied already (events arrive in any order). None: no creator of
    ours has that account."""
    if status not in (PayoutStatus.PENDING, PayoutStatus.ACTIVE, PayoutStatus.RESTRICTED):
        raise OnboardingInvalid(f"Unknown account status '{status}'.", details={"status": status})
    with transaction.atomic():
        creator = (
            Creator.objects.select_for_update()
            .filter(payout_provider=provider, provider_account_id=account_id)
            .first()
        )
        if creator is None:
            return None
        occurred_at = occurred_at or timezone.now()
        if creator.provider_event_at is not None and occurred_at < creator.provider_event_at:
            return creator
        creator.payout_status, creator.provider_event_at = status, occurred_at
        creator.save(update_fields=["payout_status", "provider_event_at", "updated_at"])
    return creator


def creator_tier_create(
    *,
    creator: Creator,
    code: str,
    name: str,
    amount: int,
    currency: str,
    interval: str = Interval.MONTH,
    description: str = "",
) -> Tier:
    """A channel tier of the creator's, with one flat recurring price: tier code `<handle>-<code>`,
    price code `<handle>-<code>-<interval>` (fans check out with either, through the checkout)."""
    if interval not in CREATOR_TIER_INTERVALS:
        raise CreatorTierInvalid("A channel tier is billed monthly or yearly.", details={"field": "interval"})
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", code or ""):
        raise CreatorTierInvalid(
            "A tier code is 1-20 lowercase letters, digits or '-'.", details={"field": "code"}
        )
    if amount <= 0:
        raise CreatorTierInvalid("A channel tier costs something.", details={"field": "amount"})
    tier_code = f"{creator.handle}-{code}"
    try:
        with transaction.atomic():
            sort = Tier.objects.filter(creator=creator).count()
            tier = Tier.objects.create(
                code=tier_code, name=name.strip()[:200] or code, description=description, is_public=True,
                sort_order=sort, creator=creator,
            )  # fmt: skip
            Price.objects.create(
                tier=tier, code=f"{tier_code}-{interval}", currency=currency.lower(), unit_amount=amount,
                interval=interval,
            )  # fmt: skip
    except IntegrityError:
        raise CreatorTierInvalid(
            f"The tier '{tier_code}' exists already.", code="tier_exists", details={"tier": tier_code}
        ) from None
    return tier


def creator_tier_delete(*, creator: Creator, code: str) -> Tier:
    """Take a channel tier down: it becomes private and its prices inactive (prices and tiers are
    kept, for the invoices and history that name them); refused (409) while it has live members."""
    with transaction.atomic():
        tier = creator_tier_get(creator=creator, code=code, for_update=True)
        if Membership.objects.filter(tier=tier, status__in=LIVE_STATUSES).exists():
            raise CreatorTierInUse(
                f"The tier '{tier.code}' has live members: it stays until they leave.",
                details={"tier": tier.code},
            )
        tier.is_public = False
        tier.save(update_fields=["is_public", "updated_at"])
        tier.prices.filter(active=True).update(active=False)
    return tier
