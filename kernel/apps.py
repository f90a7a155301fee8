from django.apps import AppConfig


class KernelConfig(AppConfig):
    """Installed only for its template tags (`{% load monetize %}`: money, quantities, dates)."""

    name = "kernel"
