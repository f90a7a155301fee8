from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "billing.entitlements"
    label = "entitlements"
    verbose_name = "Entitlements"

    def ready(self) -> None:
        from billing.entitlements import receivers
        from billing.memberships.signals import clock_changed, membership_changed
        from billing.metering.signals import snapshots_stale
        from billing.tiers.signals import catalog_changed

        catalog_changed.connect(receivers.on_catalog_changed, dispatch_uid="entitlements.catalog")
        membership_changed.connect(receivers.on_membership_changed, dispatch_uid="entitlements.membership")
        clock_changed.connect(receivers.on_clock_changed, dispatch_uid="entitlements.clock")
        snapshots_stale.connect(receivers.on_snapshots_stale, dispatch_uid="entitlements.snapshots")
