import json

from django.core.management.base import BaseCommand

from tenants.selectors import tenant_list


class Command(BaseCommand):
    help = "List tenants with their schema and domains."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def handle(self, *args, **options):
        rows = [
            {
                "slug": t.slug,
                "name": t.name,
                "schema": t.schema_name,
                "domains": [d.domain for d in t.domains.all()],
                "created_at": t.created_at.isoformat(),
            }
            for t in tenant_list()
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        if not rows:
            self.stdout.write(
                "No tenants yet. Create one with: manage.py tenant_create --slug acme --name Acme"
            )
            return
        self.stdout.write(f"{'SLUG':<24} {'SCHEMA':<24} {'DOMAINS':<40} NAME")
        for row in rows:
            self.stdout.write(
                f"{row['slug']:<24} {row['schema']:<24} {', '.join(row['domains']):<40} {row['name']}"
            )
