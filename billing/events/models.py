from django.db import models


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives our events, signed per Standard Webhooks with its own
    `whsec_` secret (stored encrypted, shown once). Disabled automatically after too many failures
    in a row."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event type.")
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return (
            not self.event_types
            or event_type in self.event_types
            or event_type.split(".")[0] + ".*" in self.event_types
        )


class OutboundEvent(models.Model):
    """Something that happened that integrators may want to know (append-only). `customer` is the
    ordering key: each endpoint gets one customer's events in the order they were created."""

    id = models.CharField(max_length=40, primary_key=True)
    type = models.CharField(max_length=64, db_index=True)
    customer = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        # a customer's newest events (the console's customer page), without scanning every event
        indexes = [models.Index(fields=["customer", "-created_at"], name="events_outbound_customer")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (resend by hand)"


class Delivery(models.Model):
    """One event to one endpoint, with its attempts. Retried on a backoff schedule until it
    succeeds or dies; `seq` orders one customer's deliveries to one endpoint."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboundEvent, on_delete=models.CASCADE, related_name="deliveries")
    customer = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # set while one worker makes the HTTP call (outside any transaction); expires by itself
    claimed_until = models.DateTimeField(null=True, blank=True)
    # set when the delivery was admitted to the broker's queue (a tenant has at most
    # WEBHOOK_OUT_TENANT_IN_FLIGHT pending ones admitted; the rest wait here, see deliveries_admit)
    queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhooks_delivery_unique")]
        indexes = [
            models.Index(fields=["endpoint", "customer", "status"], name="webhooks_delivery_order"),
            # the failing ones by day (the overview's webhook health)
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=("dead", "failed")),
                name="webhooks_delivery_failing_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """The delivery log: every HTTP attempt with its outcome."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error}"
