from django.contrib import admin, messages

from billing.events.models import Delivery, DeliveryAttempt, WebhookEndpoint
from billing.events.services import delivery_resend


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status_code", "error", "duration_ms"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Create endpoints through the API (the secret is shown once there); here: view, disable, re-enable."""

    list_display = [
        "url",
        "description",
        "event_types",
        "is_active",
        "consecutive_failures",
        "disabled_reason",
    ]
    list_filter = ["is_active"]
    readonly_fields = ["consecutive_failures", "disabled_reason", "created_at"]
    exclude = ["secret_encrypted"]

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "endpoint",
        "event",
        "customer",
        "status",
        "attempts",
        "last_status_code",
        "last_attempt_at",
    ]
    list_filter = ["status", "endpoint"]
    search_fields = ["event__id", "customer"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Resend selected deliveries")
    def resend(self, request, queryset):
        for delivery in queryset:
            delivery_resend(delivery=delivery)
        messages.success(request, f"{queryset.count()} delivery(ies) queued again.")
