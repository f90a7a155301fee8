from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """Ledger reconciliation (issue 12 item 7): the ledger compared with each provider's own books,
    daily; every unexplained difference kept for staff. Its own app (and migrations) inside the
    ledger's package, beside recognition and creators' earnings."""

    name = "billing.ledger.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"
