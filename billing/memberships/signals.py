from django.dispatch import Signal

# Sent on commit after a customer's membership changed; kwargs: external_id (entitlement caches listen).
membership_changed = Signal()
