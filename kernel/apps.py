from django.apps import AppConfig


class KernelConfig(AppConfig):
    """Template tags (`{% load monetize %}`: money, quantities, dates, tables, charts) and the
    front-end libraries' staticfiles finder with its system check (kernel/assets.py)."""

    name = "kernel"

    def ready(self):
        from kernel import assets  # noqa: F401  (registers the node_modules check)
