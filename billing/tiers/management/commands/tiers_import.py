from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.tiers.catalog import catalog_import
from billing.tiers.exceptions import CatalogError
from tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = "Import a catalog YAML file (tiers, prices, features) into a tenant. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("file")

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        path = Path(options["file"])
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            with tenant_context(tenant):
                report = catalog_import(text=text, filename=str(path))
        except CatalogError as exc:
            raise CommandError(exc.message) from exc
        if not report.changed:
            self.stdout.write(
                self.style.SUCCESS(f"{path}: catalog of '{tenant.slug}' already up to date; nothing changed.")
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"{path}: imported into '{tenant.slug}'."))
            self.stdout.write(f"  created   {report.created}")
            self.stdout.write(f"  updated   {report.updated}")
            self.stdout.write(f"  deactivated prices  {report.deactivated_prices}")
        if report.tiers_not_in_file:
            self.stdout.write(
                f"  tiers in the database but not in the file (left as they are): {', '.join(report.tiers_not_in_file)}"
            )
