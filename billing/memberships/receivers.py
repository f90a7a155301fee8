from billing.memberships.services import customer_for_user


def on_user_signed_up(sender, request, user, **kwargs) -> None:
    """A person who signs up on a tenant's site becomes a customer at once (external_id `user_<pk>`)."""
    customer_for_user(user=user)
