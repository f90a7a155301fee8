from allauth.account.adapter import DefaultAccountAdapter
from django.db import connection
from django_tenants.utils import get_public_schema_name


class TenantSite:
    """What allauth's emails call the site ("Hello from {{ current_site.name }}!", the subject's
    "[name]" prefix): the tenant's name, not the request's host (no django.contrib.sites here)."""

    def __init__(self, request):
        self.domain = request.get_host() if request is not None else ""
        tenant = getattr(connection, "tenant", None)
        self.name = (getattr(tenant, "name", "") or "") if tenant is not None else ""
        if not self.name or connection.schema_name == get_public_schema_name():
            self.name = "Monetize"

    def __str__(self) -> str:
        return self.name


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is open on tenant sites (new users are customers); the operator's console has none."""

    def is_open_for_signup(self, request) -> bool:
        return connection.schema_name != get_public_schema_name()

    def format_email_subject(self, subject: str) -> str:
        from allauth.account import app_settings
        from allauth.core import context

        if app_settings.EMAIL_SUBJECT_PREFIX is not None:
            return super().format_email_subject(subject)
        return f"[{TenantSite(context.request).name}] {subject}"

    def get_from_email(self) -> str:
        """The tenant's name on the sender ("Demo Co <no-reply@…>"), the address the installation's."""
        from email.utils import formataddr, parseaddr

        name = TenantSite(None).name
        _, address = parseaddr(super().get_from_email())
        return formataddr((name, address)) if address else super().get_from_email()

    def render_mail(self, template_prefix: str, email: str, context: dict, headers: dict | None = None):
        """Replies go to the tenant's support address when it has one."""
        message = super().render_mail(template_prefix, email, context, headers=headers)
        tenant = getattr(connection, "tenant", None)
        support = getattr(tenant, "support_email", "") if tenant is not None else ""
        if support and connection.schema_name != get_public_schema_name():
            message.reply_to = [support]
        return message

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        from allauth.core import context as allauth_context

        super().send_mail(
            template_prefix, email, {**context, "current_site": TenantSite(allauth_context.request)}
        )
