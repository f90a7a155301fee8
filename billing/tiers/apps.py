from django.apps import AppConfig


class TiersConfig(AppConfig):
    name = "billing.tiers"
    label = "tiers"
    verbose_name = "Catalog"
