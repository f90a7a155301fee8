from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.selectors import tenant_list
from tenants.services import spares_drop, spares_refill, tenant_public_ensure, tenant_template_ensure


class Command(BaseCommand):
    help = (
        "Bring the whole database up to date: the public schema, the operator's public tenant row, "
        "the template schema new tenants are cloned from, then every tenant. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--public-domain", default=None, help="Host of the operator console.")

    def handle(self, *args, **options):
        verbosity = max(0, options["verbosity"] - 1)
        self.stdout.write("[1/4] public schema")
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        self.stdout.write("[2/4] operator console domain")
        tenant_public_ensure(domain=options["public_domain"])
        self.stdout.write("[3/4] template schema")
        dropped = spares_drop()  # clones of the old template; refilled below
        created = tenant_template_ensure(verbosity=verbosity)
        self.stdout.write(f"      {'created' if created else 'up to date'}")
        schemas = list(tenant_list().values_list("schema_name", flat=True))
        self.stdout.write(f"[4/4] {len(schemas)} tenant schema(s)")
        for index, schema in enumerate(schemas, 1):
            call_command(
                "migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=verbosity
            )
            self.stdout.write(f"      {index}/{len(schemas)} {schema}")
        made = spares_refill()
        self.stdout.write(f"spare schemas: {dropped} dropped, {made} cloned (ready for fast tenant creation)")
        self.stdout.write(self.style.SUCCESS("database up to date"))
