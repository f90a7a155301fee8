import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.ledger.reconciliation.services import reconciliation_run
from billing.providers.selectors import provider_accounts_per_provider
from tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = (
        "Reconcile a tenant's ledger with its providers' books now: one UTC day (default yesterday) or "
        "the last N days, every configured provider or one. A day already reconciled is shown as it "
        "stands unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--provider", help="One provider (default: every configured one).")
        parser.add_argument("--day", help="A UTC day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--days", type=int, default=1, help="This many days up to --day.")
        parser.add_argument("--force", action="store_true", help="Compare again a day already reconciled.")

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        if not 1 <= options["days"] <= 366:
            raise CommandError("--days is 1 to 366.")
        try:
            last = (
                dt.date.fromisoformat(options["day"])
                if options["day"]
                else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
            )
        except ValueError:
            raise CommandError("--day is a date, YYYY-MM-DD.") from None
        days = [last - dt.timedelta(days=n) for n in reversed(range(options["days"]))]
        differences = 0
        with tenant_context(tenant):
            providers = sorted({account.provider for account in provider_accounts_per_provider()})
            if options["provider"]:
                if options["provider"] not in providers:
                    raise CommandError(f"No {options['provider']} account is configured for this tenant.")
                providers = [options["provider"]]
            if not providers:
                raise CommandError("This tenant has no payment provider configured.")
            for provider in providers:
                for day in days:
                    run = reconciliation_run(
                        provider=provider, day=day, force=options["force"],
                        progress=lambda line: self.stdout.write("  " + line),
                    )  # fmt: skip
                    differences += run.difference_count
        style = self.style.WARNING if differences else self.style.SUCCESS
        self.stdout.write(style(f"{differences} unexplained difference(s)"))
