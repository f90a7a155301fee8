from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.tiers.catalog import catalog_export
from tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = "Export a tenant's catalog as YAML (to FILE, or stdout)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("file", nargs="?")

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        with tenant_context(tenant):
            text = catalog_export()
        if options["file"]:
            Path(options["file"]).write_text(text)
            self.stdout.write(self.style.SUCCESS(f"wrote {options['file']}"))
        else:
            self.stdout.write(text, ending="")
