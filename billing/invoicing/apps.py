from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    """The billing engine: rating, invoices, coupons and taxes, credit notes, period close, and our
    subscription engine for providers that only charge a saved method."""

    name = "billing.invoicing"
    label = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        from billing.inbox.signals import provider_invoice_reported
        from billing.invoicing import receivers
        from billing.invoicing.engine import sandbox as sandbox_engine
        from billing.invoicing.engine import stripe as stripe_engine
        from billing.invoicing.engine import toss as toss_engine
        from billing.memberships.signals import payment_recorded
        from billing.providers.registry import engine_register

        payment_recorded.connect(receivers.on_payment_recorded, dispatch_uid="invoicing.payment")
        provider_invoice_reported.connect(receivers.on_provider_invoice, dispatch_uid="invoicing.mirror")

        engine_register("sandbox", sandbox_engine)
        engine_register("toss", toss_engine)
        engine_register("stripe", stripe_engine)  # used by Stripe accounts in engine mode
