from django.apps import AppConfig


class DiscountsConfig(AppConfig):
    """Coupons: the discounts a tenant offers (see models.py for why they sit in their own app)."""

    name = "billing.discounts"
    label = "discounts"
    verbose_name = "Coupons"
