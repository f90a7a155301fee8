from django.conf import settings
from django.db import models


class Customer(models.Model):
    """Someone a tenant bills, addressed by the integrator's `external_id` (unique per tenant).
    Optionally the login (`user`) of a person who signed up on the tenant's site."""

    external_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.external_id
