"""Creators, their tips and their earnings.

A creator's money lives in the ledger (billing.ledger): `payable:creator_pending:<handle>` while an
earning is held, `payable:creator:<handle>` once it is available. The rows here say what each
posting was for (an Earning per paid charge, an EarningReversal per refund or lost dispute of it).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

HANDLE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,39}$"


class PayoutStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    RESTRICTED = "restricted", "Restricted"


class Creator(models.Model):
    """Someone who sells channel memberships and takes tips on the tenant's site, addressed by
    `handle` (unique, lowercase; it names their ledger accounts). `payout_status` follows their
    connected account at `payout_provider` (`provider_account_id`): not_started -> pending ->
    active | restricted."""

    handle = models.CharField(max_length=40, unique=True)
    display_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="creator"
    )
    payout_status = models.CharField(
        max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.NOT_STARTED
    )
    payout_provider = models.CharField(max_length=16, blank=True)
    provider_account_id = models.CharField(max_length=255, blank=True)
    # when the provider's newest applied account event happened: an older one never rolls it back
    provider_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(handle__regex=HANDLE_PATTERN), name="creators_handle_format"),
            models.UniqueConstraint(
                fields=["payout_provider", "provider_account_id"],
                condition=~Q(provider_account_id=""),
                name="creators_unique_provider_account",
            ),
        ]

    def __str__(self) -> str:
        return self.handle


class TipStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    EXPIRED = "expired", "Expired"


class Tip(models.Model):
    """A fan's one-time payment to a creator, optionally for one item (a video): created with its
    provider checkout (the row id is the provider call's idempotency key), paid when the provider
    reports the payment (only then does it credit anyone)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="tips")
    customer = models.ForeignKey("memberships.Customer", on_delete=models.PROTECT, related_name="tips")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    item_id = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=TipStatus.choices, default=TipStatus.OPEN)
    provider_checkout_id = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    success_url = models.URLField(max_length=2000)
    cancel_url = models.URLField(max_length=2000)
    payment = models.OneToOneField(
        "memberships.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="tip"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="creators_tip_amount_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="creators_tip_currency"),
        ]

    def __str__(self) -> str:
        return f"tip {self.amount} {self.currency} to {self.creator_id}"


class EarningKind(models.TextChoices):
    MEMBERSHIP = "membership", "Membership"
    TIP = "tip", "Tip"


class EarningStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AVAILABLE = "available", "Available"


class Earning(models.Model):
    """A creator's share of one paid charge (a membership invoice's or a tip's), once per charge:
    gross = provider_fee + platform_fee + net. `fee_bps` is the platform's rate at the time, kept
    so a later change never rewrites it. Held until `available_at` (pending), then available."""

    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="earnings")
    payment = models.OneToOneField("memberships.Payment", on_delete=models.PROTECT, related_name="earning")
    kind = models.CharField(max_length=10, choices=EarningKind.choices)
    currency = models.CharField(max_length=3)
    gross = models.BigIntegerField()
    provider_fee = models.BigIntegerField(default=0)
    platform_fee = models.BigIntegerField(default=0)
    fee_bps = models.PositiveIntegerField()
    net = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=EarningStatus.choices, default=EarningStatus.PENDING)
    earned_at = models.DateTimeField()
    available_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    item_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-earned_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gross=models.F("provider_fee") + models.F("platform_fee") + models.F("net")),
                name="creators_earning_split_adds_up",
            ),
            models.CheckConstraint(condition=Q(gross__gt=0), name="creators_earning_gross_positive"),
        ]
        indexes = [models.Index(fields=["status", "available_at"], name="creators_earning_due")]

    def __str__(self) -> str:
        return f"{self.creator_id} +{self.net} {self.currency}"


class EarningReversal(models.Model):
    """What a refund or lost dispute (`payment`) took back of an earning: each component in
    proportion to the money returned (all of it when the whole charge is), once per payment, from
    the account that held it then (pending or available: the balance may go negative, and later
    earnings make it up)."""

    earning = models.ForeignKey(Earning, on_delete=models.PROTECT, related_name="reversals")
    payment = models.OneToOneField(
        "memberships.Payment", on_delete=models.PROTECT, related_name="earning_reversal"
    )
    gross = models.BigIntegerField()
    provider_fee = models.BigIntegerField(default=0)
    platform_fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField()
    from_status = models.CharField(max_length=10, choices=EarningStatus.choices)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gross=models.F("provider_fee") + models.F("platform_fee") + models.F("net")),
                name="creators_reversal_split_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.earning_id} -{self.net}"


class PayoutState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"


class Payout(models.Model):
    """Money paid out of a creator's available balance to their connected account: requested (the
    amount leaves `available` for `payouts_in_transit` at once, so two requests cannot spend it
    twice) -> processing (the provider took the transfer, keyed `payout-<id>`) -> paid (it leaves
    the provider's cash) | failed (it returns to `available`). `schedule_key` makes a scheduled
    run's payout once per creator, currency and run."""

    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="payouts")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=PayoutState.choices, default=PayoutState.REQUESTED)
    provider = models.CharField(max_length=16)
    account_id = models.CharField(max_length=255)
    provider_transfer_id = models.CharField(max_length=255, blank=True)
    provider_payout_id = models.CharField(max_length=255, blank=True, db_index=True)
    failure_message = models.CharField(max_length=500, blank=True)
    schedule_key = models.CharField(max_length=40, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    processing_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="creators_payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="creators_payout_currency"
            ),
            models.UniqueConstraint(
                fields=["creator", "currency", "schedule_key"],
                condition=~Q(schedule_key=""),
                name="creators_payout_once_per_schedule",
            ),
        ]
        # the staff list's orders (console.creators): a page of 25 walks one index
        indexes = [
            models.Index(fields=["requested_at", "id"], name="creators_payout_requested_id"),
            models.Index(fields=["amount", "id"], name="creators_payout_amount_id"),
            models.Index(fields=["status", "id"], name="creators_payout_status_id"),
        ]

    def __str__(self) -> str:
        return f"payout-{self.pk}"

    @property
    def key(self) -> str:
        return f"payout-{self.pk}"


class CreatorTotal(models.Model):
    """A creator's running totals in one currency, kept in the transaction of each earning and
    reversal (so reading a lifetime is one row, however many earnings): `earned` is the sum of
    their earnings' net, `reversed` the sum of what refunds and lost disputes took back."""

    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="totals")
    currency = models.CharField(max_length=3)
    earned = models.BigIntegerField(default=0)
    reversed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["creator", "currency"], name="creators_total_creator_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.creator_id} {self.currency} {self.earned - self.reversed}"
