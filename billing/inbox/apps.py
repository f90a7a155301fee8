from django.apps import AppConfig


class InboxConfig(AppConfig):
    """Provider webhooks in: verify, store, apply exactly once."""

    name = "billing.inbox"
    label = "inbox"
    verbose_name = "Provider webhooks (inbox)"
