from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Outbound events to integrators: endpoints, signed deliveries, retries. The label stays
    `webhooks` (the app's tables and migrations predate the split from the inbox)."""

    name = "billing.events"
    label = "webhooks"
    verbose_name = "Webhooks to integrators"
