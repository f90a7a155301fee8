from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.ledger.backfill import ledger_backfill
from tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = (
        "Post a tenant's finalized invoices and recorded payments the ledger does not have yet (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--batch", type=int, default=1000)

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        if options["batch"] <= 0:
            raise CommandError("--batch must be positive.")
        with tenant_context(tenant):
            posted = ledger_backfill(
                batch=options["batch"], progress=lambda line: self.stdout.write("  " + line)
            )
        self.stdout.write(self.style.SUCCESS(f"{posted} transaction(s) posted"))
