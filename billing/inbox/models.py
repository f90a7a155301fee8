from django.db import models


class InboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Ignored (not acted on)"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (needs a replay)"
    # can never apply as it stands (no customer, price or variant of ours): staff fix the mapping, then replay
    UNMATCHED = "unmatched", "Unmatched (needs staff)"


class InboxEvent(models.Model):
    """A verified provider webhook, stored before it is acknowledged. Unique per provider and event
    id, so a redelivery is recognised; applied at most once (the application and the `applied`
    status commit together). The inbox, not the broker, is the source of truth: a sweeper
    re-enqueues rows that stayed pending or are due for a retry."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # the table keeps its name from when inbox and outbound webhooks were one app
        db_table = "webhooks_inboxevent"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhooks_inbox_unique_event")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhooks_inbox_due")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"
