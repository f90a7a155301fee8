from django.contrib import admin, messages

from billing.inbox.models import InboxEvent
from billing.inbox.services import inbox_replay


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "provider",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_error",
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

    @admin.action(description="Replay selected failed/dead/unmatched events")
    def replay(self, request, queryset):
        count = inbox_replay(inbox_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} event(s) queued again.")
