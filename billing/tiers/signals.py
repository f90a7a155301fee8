from django.dispatch import Signal

# Sent on commit after tiers, prices, features or tier features changed (entitlement caches listen).
catalog_changed = Signal()
