import uuid

from django.db import models
from django.db.models import Q


class EntitlementOverride(models.Model):
    """A per-customer exception to the tier: grant or deny a feature, raise a limit, change a rate.
    Null fields inherit the tier's value; `expires_at` ends the override by itself."""

    customer = models.ForeignKey("memberships.Customer", on_delete=models.CASCADE, related_name="overrides")
    feature = models.ForeignKey("tiers.Feature", on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(null=True, blank=True)
    limit_value = models.BigIntegerField(null=True, blank=True)
    unlimited = models.BooleanField(default=False)
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature"], name="entitlements_override_unique"),
            models.CheckConstraint(
                condition=Q(limit_value__isnull=True) | Q(limit_value__gte=0),
                name="entitlements_override_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer}:{self.feature}"


class UsageCounter(models.Model):
    """How much of a limit feature a customer uses now (projects, memories …), moved by the
    integrator. Changes are conditional UPDATEs, so a limit holds under concurrent requests."""

    customer = models.ForeignKey("memberships.Customer", on_delete=models.CASCADE, related_name="counters")
    feature = models.ForeignKey("tiers.Feature", on_delete=models.CASCADE, related_name="+")
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature"], name="entitlements_counter_unique"),
            models.CheckConstraint(condition=Q(value__gte=0), name="entitlements_counter_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.customer}:{self.feature}={self.value}"


class Lease(models.Model):
    """A held slot of a concurrency limit (a running build). It frees itself at `expires_at`
    unless renewed, so a crashed holder never keeps a slot for ever."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey("memberships.Customer", on_delete=models.CASCADE, related_name="leases")
    feature = models.ForeignKey("tiers.Feature", on_delete=models.CASCADE, related_name="+")
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "feature", "expires_at"],
                condition=Q(released_at__isnull=True),
                name="entitlements_lease_active",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class CustomerApiKey(models.Model):
    """An end-user key a tenant hands its customer (`sk-<tenant>-<32 hex>`), verified by the
    integrator's gateway. Only the SHA-256 and a visible prefix are stored."""

    customer = models.ForeignKey("memberships.Customer", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=64)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_from"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}…"
