from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The double-entry ledger every money movement posts to (accounts, journal, running balances).
    It listens to the apps below it: finalized invoices and provider payments post here."""

    name = "billing.ledger"
    label = "ledger"
    verbose_name = "Ledger"
