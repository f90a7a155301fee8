from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The double-entry ledger every money movement posts to (accounts, journal, running balances).
    It listens to the apps below it: finalized invoices (reversed when voided) and provider payments post here."""

    name = "billing.ledger"
    label = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from billing.invoicing.signals import (
            credit_note_issued,
            invoice_marked_uncollectible,
            invoice_payment_applied,
            invoice_voided,
            invoices_finalized,
        )
        from billing.ledger import receivers
        from billing.memberships.signals import payment_recorded

        invoices_finalized.connect(receivers.on_invoices_finalized, dispatch_uid="ledger.invoices")
        invoice_voided.connect(receivers.on_invoice_voided, dispatch_uid="ledger.invoice_voided")
        credit_note_issued.connect(receivers.on_credit_note_issued, dispatch_uid="ledger.credit_note")
        invoice_marked_uncollectible.connect(
            receivers.on_invoice_marked_uncollectible, dispatch_uid="ledger.uncollectible"
        )
        invoice_payment_applied.connect(receivers.on_invoice_payment_applied, dispatch_uid="ledger.applied")
        payment_recorded.connect(receivers.on_payment_recorded, dispatch_uid="ledger.payment")
