from allauth.account.adapter import DefaultAccountAdapter
from django.db import connection
from django_tenants.utils import get_public_schema_name


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is open on tenant sites (new users are customers); the operator's console has none."""

    def is_open_for_signup(self, request) -> bool:
        return connection.schema_name != get_public_schema_name()
