from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "billing.providers"
    label = "providers"
    verbose_name = "Payment providers"
