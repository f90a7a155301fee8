from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "billing.metering"
    label = "metering"
    verbose_name = "Usage metering"

    def ready(self) -> None:
        from billing.memberships.signals import membership_changed
        from billing.metering import receivers

        membership_changed.connect(receivers.on_membership_changed, dispatch_uid="metering.allowance")
