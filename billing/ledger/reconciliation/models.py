"""Reconciliation runs and the differences they found.

A run compares, for one provider and one UTC day, the provider's own books (its balance
transactions: charges, refunds, lost disputes, each with the fee it kept) with our recorded
payments and their ledger postings on `cash:<provider>`, matched by the provider's ids. One run per
(provider, day): the daily job and a re-run find it rather than making another; a forced re-run
replaces its items in the same transaction.
"""

from django.db import models
from django.db.models import Q


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    BALANCED = "balanced", "Balanced"  # every movement matched: no difference
    DIFFERENCES = "differences", "Differences found"
    FAILED = "failed", "Failed"  # the provider did not answer: tried again by the next run
    UNSUPPORTED = "unsupported", "Not supported"  # the provider offers no books to compare with


class ItemKind(models.TextChoices):
    MISSING_IN_LEDGER = "missing_in_ledger", "Missing in the ledger"
    MISSING_AT_PROVIDER = "missing_at_provider", "Missing at the provider"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount differs"
    FEE_MISMATCH = "fee_mismatch", "Fee differs"


class ReconciliationRun(models.Model):
    """One comparison of the ledger with a provider's books over [window_start, window_end) (a
    UTC day), unique per (provider, day). Counts: the provider's movements, ours, the matched ones
    and the differences (its items)."""

    provider = models.CharField(max_length=16)
    day = models.DateField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING)
    provider_count = models.PositiveIntegerField(default=0)
    ledger_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    difference_count = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "day"], name="reconciliation_run_provider_day"),
            models.CheckConstraint(
                condition=Q(window_end__gt=models.F("window_start")), name="reconciliation_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day} {self.status}"


class ReconciliationItem(models.Model):
    """One unexplained difference of a run: a movement on one side only, or matched with another
    amount or fee. `provider_ref` is the provider's id of the charge/refund (what our payment names),
    `provider_entry` its balance transaction's id; amounts are minor units of `currency` (None:
    that side has none). `ledger_amount` is what our ledger moved on `cash:<provider>` for it."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=20, choices=ItemKind.choices)
    provider_ref = models.CharField(max_length=255, blank=True)
    provider_entry = models.CharField(max_length=255, blank=True)
    payment_id = models.BigIntegerField(
        null=True, blank=True
    )  # our memberships.Payment (no FK: kept if it goes)
    currency = models.CharField(max_length=3, blank=True)
    provider_amount = models.BigIntegerField(null=True, blank=True)
    provider_fee = models.BigIntegerField(null=True, blank=True)
    our_amount = models.BigIntegerField(null=True, blank=True)
    our_fee = models.BigIntegerField(null=True, blank=True)
    ledger_amount = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["kind"], name="reconciliation_item_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.provider_ref}"
