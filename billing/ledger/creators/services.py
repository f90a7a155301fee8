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
_CURRENCY = re.compile(r"^[a-z]{3}$")
CREATOR_TIER_INTERVALS = (Interval.MONTH, Interval.YEAR)
PRICE_CODE_MAX = 64  # Price.code
TIER_CODE_MAX = PRICE_CODE_MAX - len("-month-99")
DESCRIPTION_MAX = 2000
BIGINT_MAX = 2**63 - 1  # a larger amount is refused, never a DataError


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


def _tier_code(creator: Creator, code: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", code or ""):
        raise CreatorTierInvalid(
            "A tier code is 1-20 lowercase letters, digits or '-'.", details={"field": "code"}
        )
    tier_code = f"{creator.handle}-{code}"
    if len(tier_code) > TIER_CODE_MAX:
        # its prices' codes (`<tier>-month`, a changed price's `<tier>-month-2`) must fit in 64 too
        raise CreatorTierInvalid(
            f"With the handle '{creator.handle}', a tier code is at most "
            f"{TIER_CODE_MAX - len(creator.handle) - 1} characters.",
            details={"field": "code", "max_length": TIER_CODE_MAX - len(creator.handle) - 1},
        )
    return tier_code


def _check_amount(amount: int, field: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise CreatorTierInvalid("A channel tier costs something.", details={"field": field})
    if amount > BIGINT_MAX:
        raise CreatorTierInvalid("That amount is too large.", details={"field": field})


def _price_add(*, tier: Tier, interval: str, amount: int, currency: str) -> Price:
    """A new price of the tier's: `<tier>-<interval>` the first time, `<tier>-<interval>-<n>` after a
    change (a code is never reused: subscriptions and invoices name their price by code)."""
    taken = set(Price.objects.filter(tier=tier).values_list("code", flat=True))
    base, n = f"{tier.code}-{interval}", 1
    code = base
    while code in taken:
        n += 1
        code = f"{base}-{n}"
    if len(code) > PRICE_CODE_MAX:
        raise CreatorTierInvalid(
            "This tier's price has changed too many times: publish a new tier instead.",
            details={"field": "yearly_amount" if interval == Interval.YEAR else "amount"},
        )
    return Price.objects.create(
        tier=tier, code=code, currency=currency, unit_amount=amount, interval=interval
    )


def creator_tier_create(
    *,
    creator: Creator,
    code: str,
    name: str,
    amount: int,
    currency: str,
    interval: str = Interval.MONTH,
    description: str = "",
    yearly_amount: int | None = None,
) -> Tier:
    """A channel tier of the creator's, with one flat recurring price: tier code `<handle>-<code>`,
    price code `<handle>-<code>-<interval>` (fans check out with either, through the checkout).
    A monthly tier may have a yearly price too (`yearly_amount`, same currency)."""
    if interval not in CREATOR_TIER_INTERVALS:
        raise CreatorTierInvalid("A channel tier is billed monthly or yearly.", details={"field": "interval"})
    tier_code = _tier_code(creator, code)
    _check_amount(amount, "amount")
    if yearly_amount is not None:
        if interval != Interval.MONTH:
            raise CreatorTierInvalid(
                "A yearly price goes beside a monthly one.", details={"field": "yearly_amount"}
            )
        _check_amount(yearly_amount, "yearly_amount")
    currency = (currency or "").lower()
    if not _CURRENCY.match(currency):
        raise CreatorTierInvalid(
            "A currency is a three-letter ISO 4217 code, such as usd.", details={"field": "currency"}
        )
    name = (name or "").strip()[:200] or code
    if len(description or "") > DESCRIPTION_MAX:
        raise CreatorTierInvalid(
            f"A description is at most {DESCRIPTION_MAX:,} characters.", details={"field": "description"}
        )
    try:
        with transaction.atomic():
            sort = Tier.objects.filter(creator=creator).count()
            tier = Tier.objects.create(
                code=tier_code, name=name, description=description, is_public=True, sort_order=sort,
                creator=creator,
            )  # fmt: skip
            _price_add(tier=tier, interval=interval, amount=amount, currency=currency)
            if yearly_amount is not None:
                _price_add(tier=tier, interval=Interval.YEAR, amount=yearly_amount, currency=currency)
    except IntegrityError:
        raise CreatorTierInvalid(
            f"The tier '{tier_code}' exists already.", code="tier_exists", details={"tier": tier_code}
        ) from None
    return tier


def creator_tier_update(
    *,
    creator: Creator,
    code: str,
    name: str,
    description: str = "",
    amounts: dict[str, int | None] | None = None,
) -> tuple[Tier, list[Price]]:
    """Rename a published channel tier of the creator's, change its description, and (`amounts`:
    interval -> amount, None for no price at that interval) its prices. A price's terms never
    change: a new amount is a new price (a new code), the old one is made inactive, and members
    who joined at it keep paying it. At least one price stays. Returns the tier and its new prices."""
    name = (name or "").strip()
    if not name:
        raise CreatorTierInvalid("A tier needs a name.", details={"field": "name"})
    if len(name) > 200:
        raise CreatorTierInvalid("A name is at most 200 characters.", details={"field": "name"})
    if len(description or "") > DESCRIPTION_MAX:
        raise CreatorTierInvalid(
            f"A description is at most {DESCRIPTION_MAX:,} characters.", details={"field": "description"}
        )
    amounts = amounts or {}
    for interval, amount in amounts.items():
        if interval not in CREATOR_TIER_INTERVALS:
            raise CreatorTierInvalid(
                "A channel tier is billed monthly or yearly.", details={"field": "interval"}
            )
        if amount is not None:
            _check_amount(amount, "yearly_amount" if interval == Interval.YEAR else "amount")
    with transaction.atomic():
        tier = creator_tier_get(creator=creator, code=code, for_update=True)
        active = {price.interval: price for price in tier.prices.filter(active=True).order_by("id")}
        currency = next(iter(active.values())).currency if active else None
        if currency is None:
            currency = tier.prices.order_by("-id").values_list("currency", flat=True).first() or "usd"
        wanted = {interval: price.unit_amount for interval, price in active.items()} | amounts
        if not any(amount is not None for amount in wanted.values()):
            raise CreatorTierInvalid(
                "A tier keeps at least one price (monthly or yearly).", details={"field": "amount"}
            )
        added = []
        for interval, amount in amounts.items():
            current = active.get(interval)
            if current is not None and current.unit_amount == amount:
                continue
            if current is not None:
                Price.objects.filter(pk=current.pk).update(active=False)
            if amount is not None:
                added.append(_price_add(tier=tier, interval=interval, amount=amount, currency=currency))
        tier.name, tier.description = name, description or ""
        tier.save(update_fields=["name", "description", "updated_at"])
    return tier, added


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
