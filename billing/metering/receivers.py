"""A customer whose membership changed gets the new tier's credit allowance for the period at once
(the hourly job would grant it within the hour anyway)."""


def on_membership_changed(sender, external_id: str, committed: bool = False, **kwargs) -> None:
    # memberships send this inside their transaction and again once it committed: act on the
    # second, so a failure here can never roll a membership change back
    if not committed:
        return
    from billing.memberships.models import Customer
    from billing.metering.credits import credits_allowance_for

    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is not None:
        credits_allowance_for(customer=customer)
