from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "billing.metering"
    label = "metering"
    verbose_name = "Usage metering"

    def ready(self) -> None:
        from billing.memberships.signals import membership_changed
        from billing.metering import receivers
        from billing.metering.catalog_meters import SECTION
        from billing.tiers.catalog import catalog_section_register

        catalog_section_register(SECTION)

        membership_changed.connect(receivers.on_membership_changed, dispatch_uid="metering.allowance")
