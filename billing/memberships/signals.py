from django.dispatch import Signal

# Sent when a customer's membership changed, inside the transaction and again on commit (then with
# committed=True); kwargs: external_id. Entitlement caches and credit allowances listen.
membership_changed = Signal()
# Sent after the tenant's billing clock moved (the sandbox clock): time-bound entitlements
# (dunning grace periods) must be judged again.
clock_changed = Signal()
