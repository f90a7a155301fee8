"""Meter sync: what was reported to the payment providers, per customer, meter and billing period.

See billing.metering.sync for the design. Invariant, per customer and meter: the sum of the states'
`reported` == the sum of their `covered` == the quantities of the `sent` reports.
"""

import pgtrigger
from django.db import models
from django.db.models import Q

__all__ = [
    "MeterSyncReport",
    "MeterSyncRun",
    "MeterSyncState",
    "ReportStatus",
    "RunStatus",
    "SandboxUsageReport",
]


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial (some customers left for the next run)"
    FAILED = "failed", "Failed"


class MeterSyncRun(models.Model):
    """One run of the meter sync (nightly beat job or `manage.py meter_sync`): how many customers
    it looked at, the reports and usage units the providers accepted, the failures and why."""

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    trigger = models.CharField(max_length=16, default="manual")  # beat, command, manual
    customers = models.PositiveIntegerField(default=0)
    reports = models.PositiveIntegerField(default=0)
    units = models.BigIntegerField(default=0)  # the usage units reported (sum of the reports' quantities)
    failures = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True
    )  # the first failures: [{customer, meter, code, message}]
    error = models.TextField(blank=True)  # an unexpected error that stopped the run

    class Meta:
        db_table = "metering_sync_run"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"meter sync {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None


class MeterSyncState(models.Model):
    """One customer's usage of one meter in one billing period, as far as the providers know it.
    `covered`: the whole units of this period's own usage reported so far (in its own reports or,
    once the period is closed, forwarded in a later period's report); `reported`: the units sent
    in reports attributed to this period (its own plus late usage forwarded from closed periods).
    `closed_at`: synced after the period ended; later usage of the period goes to the current one."""

    customer = models.ForeignKey("memberships.Customer", on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey("metering.Meter", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    usage = models.DecimalField(max_digits=38, decimal_places=9, default=0)  # at the last sync
    covered = models.BigIntegerField(default=0)
    reported = models.BigIntegerField(default=0)
    reports = models.PositiveIntegerField(default=0)  # reports attributed to this period so far
    closed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "metering_sync_state"
        constraints = [
            models.UniqueConstraint(fields=["customer", "meter", "period_start"], name="metering_sync_state_key"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="metering_sync_state_period"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.meter_id}@{self.period_start:%Y-%m-%d}"


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Pending (sent or about to be; resent with the same identifier)"
    SENT = "sent", "Accepted by the provider"
    REFUSED = "refused", "Refused by the provider (recomputed at the next run)"


@pgtrigger.register(
    pgtrigger.ReadOnly(
        name="sync_report_terms_immutable",
        fields=[
            "identifier",
            "customer",
            "meter",
            "state",
            "quantity",
            "reported_after",
            "parts",
            "provider",
        ],
    ),
    pgtrigger.Protect(name="sync_report_no_delete", operation=pgtrigger.Delete),
)
class MeterSyncReport(models.Model):
    """One usage report to a provider, written (pending) BEFORE the provider call and applied to
    the states after the provider accepted it: a crashed run resends a pending report as it is,
    with the same `identifier`, so the provider records it once. Its terms are immutable and it is
    never deleted (the database refuses both): the audit trail of everything ever sent."""

    run = models.ForeignKey(MeterSyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    identifier = models.CharField(max_length=100, unique=True)
    customer = models.ForeignKey("memberships.Customer", on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey("metering.Meter", on_delete=models.PROTECT, related_name="+")
    state = models.ForeignKey(
        MeterSyncState, on_delete=models.PROTECT, related_name="+"
    )  # the period it is in
    quantity = models.BigIntegerField()
    reported_after = models.BigIntegerField()  # state.reported once applied
    # {"covered": {state_id: units}}: what the report covers of which periods' usage (applied atomically)
    parts = models.JSONField(default=dict)
    provider = models.CharField(max_length=16)
    provider_customer_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=8, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    provider_ref = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "metering_sync_report"
        constraints = [
            # one report in flight per period: the next is planned after it is applied or refused
            models.UniqueConstraint(fields=["state"], condition=Q(status="pending"), name="metering_sync_one_pending"),
        ]  # fmt: skip
        # the refused ones by day (the overview's usage a provider did not accept)
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(status="refused"), name="metering_sync_refused_at"
            )
        ]

    def __str__(self) -> str:
        return self.identifier


@pgtrigger.register(
    pgtrigger.Protect(name="sandbox_usage_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class SandboxUsageReport(models.Model):
    """The sandbox provider's record of a usage report (what Stripe keeps as a meter event): one
    row per identifier, append-only (the database refuses UPDATE and DELETE)."""

    identifier = models.CharField(max_length=100, unique=True)
    customer = models.CharField(max_length=255)
    meter = models.CharField(max_length=64)
    quantity = models.BigIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_sandbox_usage"

    def __str__(self) -> str:
        return f"{self.identifier}: {self.customer} {self.meter} {self.quantity}"
