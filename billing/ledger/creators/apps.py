from django.apps import AppConfig


class CreatorsConfig(AppConfig):
    """Creators (issue 12 items 3-5): their profiles and payout onboarding, their channel tiers, tips,
    and the split of every paid membership invoice or tip into provider fee, platform fee and the
    creator's earning, posted to the ledger. Part of the ledger layer: it uses the apps below it
    (memberships, invoicing, tiers, providers), never the reverse."""

    name = "billing.ledger.creators"
    label = "creators"
    verbose_name = "Creators"

    def ready(self) -> None:
        from billing.inbox.signals import provider_account_reported, provider_payout_reported
        from billing.ledger.creators import receivers
        from billing.memberships.signals import clock_changed, payment_recorded

        payment_recorded.connect(receivers.on_payment_recorded, dispatch_uid="creators.payment")
        clock_changed.connect(receivers.on_clock_changed, dispatch_uid="creators.clock")
        provider_account_reported.connect(receivers.on_provider_account, dispatch_uid="creators.account")
        provider_payout_reported.connect(receivers.on_provider_payout, dispatch_uid="creators.payout")
