from django.dispatch import Signal

# Sent on commit after a customer's membership changed; kwargs: external_id (entitlement caches listen).
membership_changed = Signal()
# Sent after the tenant's billing clock moved (the sandbox clock): time-bound entitlements
# (dunning grace periods) must be judged again.
clock_changed = Signal()
