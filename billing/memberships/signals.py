from django.dispatch import Signal

# Sent when a customer's membership changed, inside the transaction and again on commit (then with
# committed=True); kwargs: external_id, or external_ids (a list, external_id None) when a batch of
# changes is told at once (the inbox applying a burst of provider events). Entitlement caches and
# credit allowances listen.
membership_changed = Signal()
# Sent after the tenant's billing clock moved (the sandbox clock): time-bound entitlements
# (dunning grace periods) must be judged again.
clock_changed = Signal()
# Sent inside the transaction that recorded a new provider-reported Payment (a charge, failed
# charge, refund or dispute; never for a redelivery); kwargs: payment, charge (the charge a refund
# or dispute concerns, when recorded), checkout_id (our checkout a charge paid, or ""). Invoicing links it to the invoice it names (Payment.invoice_ref)
# and turns a refund of an invoice's charge into a credit note.
payment_recorded = Signal()
