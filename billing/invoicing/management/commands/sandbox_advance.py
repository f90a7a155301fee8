from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.invoicing.engine.sandbox import clock_advance, sandbox_now
from tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = "Move a tenant's sandbox clock forward and play renewals, trial ends and payment retries."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--days", type=float, required=True)

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        if options["days"] <= 0:
            raise CommandError("--days must be positive (the sandbox clock only moves forward).")
        with tenant_context(tenant):
            played = clock_advance(days=options["days"], progress=lambda line: self.stdout.write("  " + line))
            now = sandbox_now()
        self.stdout.write(
            self.style.SUCCESS(f"sandbox clock now {now:%Y-%m-%d %H:%M} UTC; {played} event(s) played")
        )
