"""Credit grants: made (idempotent per reference), allowances renewed each billing period, expiry.
Locks as billing.metering.credits.burn describes: accounts, then grants, in pk order."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.utils import timezone

from billing.memberships.models import Customer
from billing.metering.credit_models import (
    CreditGrant,
    CreditLedgerEntry,
    GrantSource,
    LedgerKind,
)
from billing.metering.credits.burn import (
    GrantReferenceReused,
    InvalidCredits,
    _accounts_for_update,
    _announce,
    _invalidate,
)
from kernel.db import rows_update


def credit_grant_create(
    *,
    customer: Customer,
    amount: int,
    priority: int = 100,
    effective_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    source: str = GrantSource.MANUAL,
    reference: str = "",
) -> tuple[CreditGrant, bool]:
    """Grant `amount` micro-credits; (grant, created). The same `reference` again returns the
    first grant (same amount and source) or raises GrantReferenceReused."""
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidCredits("'amount' must be positive.", details={"field": "amount"})
    if source not in GrantSource.values:
        raise InvalidCredits(
            f"'source' is one of {', '.join(GrantSource.values)}.", details={"field": "source"}
        )
    effective_at = effective_at or timezone.now()
    if expires_at is not None and expires_at <= effective_at:
        raise InvalidCredits("'expires_at' must be after 'effective_at'.", details={"field": "expires_at"})
    reference = reference or f"grant:{uuid.uuid4().hex}"
    with transaction.atomic():
        account = _accounts_for_update([customer.pk])[customer.pk]
        existing = CreditGrant.objects.filter(customer=customer, reference=reference).first()
        if existing is not None:
            if existing.amount != amount or existing.source != source:
                raise GrantReferenceReused(
                    f"Grant reference '{reference}' was used for different terms.",
                    details={"reference": reference},
                )
            return existing, False
        grant = CreditGrant.objects.create(
            customer=customer, amount=amount, remaining=amount, priority=priority, effective_at=effective_at,
            expires_at=expires_at, source=source, reference=reference,
        )  # fmt: skip
        account.balance += amount
        account.save(update_fields=["balance", "updated_at"])
        CreditLedgerEntry.objects.create(
            customer=customer, kind=LedgerKind.GRANT, amount=amount, grant=grant, balance_after=account.balance,
            reference=reference, details={"source": source},
        )  # fmt: skip
        _invalidate({customer.external_id})
    return grant, True


def credits_allowance_renew(
    *, customer: Customer, period_start: dt.datetime, amount: int, period_end: dt.datetime | None = None
) -> tuple[CreditGrant, bool]:
    """The tier allowance of one period, granted once (reference from customer + period); it
    burns first (priority 0) and expires at `period_end`."""
    return credit_grant_create(
        customer=customer, amount=amount, priority=0, effective_at=period_start, expires_at=period_end,
        source=GrantSource.TIER_ALLOWANCE, reference=f"allowance:{customer.pk}:{period_start.isoformat()}",
    )  # fmt: skip


def credits_allowance_for(*, customer: Customer) -> CreditGrant | None:
    """Grant the customer's tier allowance for the current billing period (its membership's
    period, else the calendar month) unless it was granted already; None when the tier has none."""
    from billing.memberships.selectors import customer_tier
    from billing.metering.selectors import current_period

    tier = customer_tier(customer=customer)
    if tier is None or not tier.credit_allowance:
        return None
    start, end = current_period(customer=customer)
    grant, _ = credits_allowance_renew(
        customer=customer, period_start=start, period_end=end, amount=tier.credit_allowance
    )
    return grant


def credits_allowances_renew(*, chunk: int = 500) -> int:
    """Every customer on a tier with an allowance gets this period's grant once (beat, hourly:
    periods start at different times per membership). Returns the number of new grants."""
    from billing.tiers.models import Tier

    tiers = set(Tier.objects.filter(credit_allowance__gt=0).values_list("pk", flat=True))
    if not tiers:
        return 0
    before = CreditGrant.objects.filter(source=GrantSource.TIER_ALLOWANCE).count()
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    for offset in range(0, len(ids), chunk):
        for customer in Customer.objects.filter(pk__in=ids[offset : offset + chunk]).order_by("pk"):
            credits_allowance_for(customer=customer)
    return CreditGrant.objects.filter(source=GrantSource.TIER_ALLOWANCE).count() - before


def credits_expire(*, now: dt.datetime | None = None) -> int:
    """Write an `expire` entry for every grant past its expiry with credits left (idempotent: an
    expired grant is left at zero and one expire entry per grant is a unique constraint)."""
    now = now or timezone.now()
    due = set(
        CreditGrant.objects.filter(remaining__gt=0, expires_at__lte=now).values_list("customer_id", flat=True)
    )
    expired = 0
    for customer_id in sorted(due):
        with transaction.atomic():
            account = _accounts_for_update([customer_id])[customer_id]
            grants = list(
                CreditGrant.objects.select_for_update()
                .filter(customer_id=customer_id, remaining__gt=0, expires_at__lte=now)
                .order_by("pk")
            )
            if not grants:
                continue
            before = account.balance
            for grant in grants:
                account.balance -= grant.remaining
                CreditLedgerEntry.objects.create(
                    customer_id=customer_id, kind=LedgerKind.EXPIRE, amount=-grant.remaining, grant=grant,
                    balance_after=account.balance, reference=f"expire:{grant.pk}",
                )  # fmt: skip
                grant.remaining = 0
                expired += 1
            rows_update(CreditGrant._meta.db_table, {"remaining": "bigint"}, [(g.pk, 0) for g in grants])
            account.save(update_fields=["balance", "updated_at"])
            external_id = Customer.objects.values_list("external_id", flat=True).get(pk=customer_id)
            _announce(external_id=external_id, before=before, after=account.balance)
            _invalidate({external_id})
    return expired
