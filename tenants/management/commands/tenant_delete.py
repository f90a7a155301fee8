from django.core.management.base import BaseCommand, CommandError

from tenants.exceptions import ApplicationError
from tenants.selectors import tenant_get_by_slug
from tenants.services import tenant_delete


class Command(BaseCommand):
    help = "Delete a tenant: drops its schema with all its data. Asks first unless --yes."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["slug"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['slug']}'.")
        if not options["yes"]:
            answer = input(
                f"Delete tenant '{tenant.slug}' and drop schema '{tenant.schema_name}' with all its data? Type the slug to confirm: "
            )
            if answer.strip() != tenant.slug:
                raise CommandError("Not confirmed; nothing deleted.")
        try:
            tenant_delete(tenant=tenant)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Deleted tenant '{tenant.slug}'."))
