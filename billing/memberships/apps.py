from django.apps import AppConfig


class MembershipsConfig(AppConfig):
    name = "billing.memberships"
    label = "memberships"
    verbose_name = "Customers and memberships"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        from billing.memberships.receivers import on_user_signed_up

        user_signed_up.connect(on_user_signed_up, dispatch_uid="memberships.customer_on_signup")
