import json
import time

from django.core.management.base import BaseCommand, CommandError

from accounts.services import tenant_provision
from kernel.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create a tenant: its schema (cloned from the template), primary domain, an optional owner "
        "login and a first integrator API key (printed once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True, help="3-40 lowercase letters, digits, hyphens.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", help="Defaults to <slug>.<MONETIZE_TENANT_DOMAIN_SUFFIX>.")
        parser.add_argument("--owner-email")
        parser.add_argument("--owner-password", help="Without it the owner sets one via password reset.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object and nothing else.")

    def handle(self, *args, **options):
        started = time.perf_counter()
        try:
            result = tenant_provision(
                slug=options["slug"],
                name=options["name"],
                domain=options["domain"],
                owner_email=options["owner_email"],
                owner_password=options["owner_password"],
            )
        except ApplicationError as exc:
            if options["json"]:
                self.stdout.write(
                    json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}})
                )
            raise CommandError(exc.message) from exc
        body = {
            "slug": result.tenant.slug,
            "name": result.tenant.name,
            "domain": result.domain,
            "schema": result.tenant.schema_name,
            "owner_email": result.owner.email if result.owner else None,
            "api_key": result.api_key_secret,
            "api_key_prefix": result.api_key.prefix,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if options["json"]:
            self.stdout.write(json.dumps(body))
            return
        self.stdout.write(self.style.SUCCESS(f"Created tenant '{body['slug']}' in {body['seconds']} s"))
        for label in ("domain", "schema", "owner_email"):
            self.stdout.write(f"  {label:<12} {body[label]}")
        self.stdout.write(f"  {'api_key':<12} {body['api_key']}   (shown once: store it now)")
