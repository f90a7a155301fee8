from django.contrib import admin, messages

from billing.webhooks.models import Delivery, DeliveryAttempt, InboxEvent, WebhookEndpoint
from billing.webhooks.outbound import delivery_resend
from billing.webhooks.services import inbox_replay


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "provider",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "received_at",
        "processed_at",
    ]
    list_filter = ["status", "provider", "event_type"]
    search_fields = ["event_id", "event_type", "last_error"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in InboxEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Replay selected failed/dead events")
    def replay(self, request, queryset):
        count = inbox_replay(inbox_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} event(s) queued again.")


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
