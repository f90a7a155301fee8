import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.timezone import now as timezone_now
from django_tenants.utils import tenant_context

from accounts.models import IntegratorApiKey, User
from accounts.roles import Role
from accounts.services import api_key_create, api_key_revoke, tenant_provision, user_create
from tenants.selectors import tenant_get_by_slug

DEMO_SLUG = "demo"
DEMO_KEY_NAME = "make run"


class Command(BaseCommand):
    help = "Provision (or refresh) the demo tenant with an owner login and a fresh API key, and print them."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--owner-email", default="owner@demo.localhost")
        parser.add_argument("--owner-password", default="monetize-demo")
        parser.add_argument(
            "--env-file", help="Append MONETIZE_API_KEY=<the new key> to this file (make run's .env)."
        )

    def handle(self, *args, **options):
        email, password = options["owner_email"], options["owner_password"]
        tenant = tenant_get_by_slug(slug=DEMO_SLUG)
        if tenant is None:
            result = tenant_provision(
                slug=DEMO_SLUG, name="Demo Co", owner_email=email, owner_password=password
            )
            tenant = result.tenant
        with tenant_context(tenant):
            if not User.objects.filter(email=email).exists():
                user_create(email=email, password=password, role=Role.OWNER, name="Demo owner")
            self._demo_data(password)
            for old in IntegratorApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(api_key=old)
            _, secret = api_key_create(name=DEMO_KEY_NAME)
        host = f"{tenant.get_primary_domain().domain}:{options['port']}"
        lines = [
            "",
            "Monetize is starting. Demo tenant:",
            f"  site        http://{host}/",
            f"  log in      http://{host}/accounts/login/   {email} / {password}  (owner)",
            f"              customer@demo.localhost / {password}  (a Team customer: /account/plan/)",
            f"  pricing     http://{host}/pricing/",
            f"  API docs    http://{host}/api/docs/",
            f"  API key     {secret}",
            f"  try it      curl -H 'Authorization: Bearer {secret}' http://{host}/api/v1/me",
            f"  operator    http://localhost:{options['port']}/admin/  (manage.py createsuperuser first)",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        if options.get("env_file"):
            with open(options["env_file"], "a") as env:
                env.write(f"MONETIZE_API_KEY={secret}\n")

    def _demo_data(self, password: str) -> None:
        """The CI-service catalog, a customer login on Team with some usage, and a few API customers."""
        from billing.entitlements.services import counter_change
        from billing.memberships.services import customer_for_user, customer_upsert, membership_set_tier
        from billing.tiers.catalog import catalog_import
        from billing.tiers.models import Tier

        catalog_import(
            text=(settings.BASE_DIR / "config" / "tiers" / "ci-service.yaml").read_text(),
            filename="ci-service.yaml",
        )
        tiers = {t.code: t for t in Tier.objects.all()}
        user = User.objects.filter(email="customer@demo.localhost").first()
        if user is None:
            user = user_create(
                email="customer@demo.localhost", password=password, role=Role.CUSTOMER, name="Demo customer"
            )
            customer = customer_for_user(user=user)
            membership_set_tier(customer=customer, tier=tiers["team"])
            counter_change(customer=customer, feature="private_projects", value=7)
        self._demo_builds(customer_for_user(user=user).external_id, builds_per_day=12)
        for index, code in enumerate(["community", "team", "pro", "team", "community", "enterprise"], 1):
            customer, created = customer_upsert(
                external_id=f"acct_{index:03d}", email=f"dev{index}@example.com"
            )
            if created:
                membership_set_tier(customer=customer, tier=tiers[code])
            self._demo_builds(customer.external_id, builds_per_day=index % 4 + 1)
        self._demo_invoices()

    def _demo_invoices(self) -> None:
        """Invoices for the pages: two customers subscribed through the sandbox (their first invoices
        paid with the test card; a goodwill credit note on one), and an open invoice for the
        Enterprise customer's build minutes. Each made once (a re-run finds them)."""
        from billing.invoicing.charges import period_charges
        from billing.invoicing.credit_notes import credit_note_create
        from billing.invoicing.engine.sandbox import checkout_pay
        from billing.invoicing.models import BillingReason, Invoice
        from billing.invoicing.services import invoice_draft_create, invoice_finalize
        from billing.memberships.services import checkout_create, customer_upsert
        from billing.metering.selectors import month_start
        from billing.providers.models import EngineSubscription
        from billing.tiers.models import Price

        for external_id, name, price, seats in (("acct_007", "Ada Lovelace", "team-yearly", 1),
                                                 ("acct_008", "Grace Hopper", "pro-yearly", 3)):  # fmt: skip
            customer, _ = customer_upsert(
                external_id=external_id, email=f"{external_id}@example.com", name=name
            )
            if EngineSubscription.objects.filter(provider="sandbox", customer=external_id).exists():
                continue
            checkout = checkout_create(
                customer=customer, price_code=price, provider="sandbox", quantity=seats,
                success_url="https://example.com/welcome", cancel_url="https://example.com/pricing",
            )  # fmt: skip
            checkout_pay(checkout_id=str(checkout.pk), card_number="4242424242424242")
            if external_id == "acct_008":
                first = Invoice.objects.filter(customer=customer).order_by("id").first()
                if first is not None and first.total > 10_000:
                    credit_note_create(
                        invoice_id=first.pk, amount=10_000, reason="other", memo="Goodwill: onboarding delay"
                    )
        enterprise = customer_upsert(external_id="acct_006")[0]
        start = month_start(timezone_now())
        charges = period_charges(
            customer=enterprise.external_id, tier=Price.objects.get(code="enterprise-minutes").tier,
            currency="usd", fee_price=None, quantity=1, period_start=start, period_end=timezone_now(),
        )  # fmt: skip
        invoice, created = invoice_draft_create(
            customer=enterprise, currency="usd", lines=charges.lines, billing_reason=BillingReason.MANUAL,
            period_start=start, period_end=charges.period_end, period_key=f"demo-enterprise-{start:%Y-%m}",
        )  # fmt: skip
        if created:
            invoice_finalize(invoice_id=invoice.pk, due_in=dt.timedelta(days=30))

    def _demo_builds(self, external_id: str, *, builds_per_day: int, days: int = 10) -> None:
        """`build.finished` usage events over the last days (stable ids: a re-run stores nothing new),
        so the build-minutes meter, its limit and the usage charts have something to show."""
        import datetime as dt

        from django.utils import timezone

        from billing.metering.ingest import events_ingest

        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        events = [
            {
                "id": f"demo-build-{external_id}-{day}-{build}",
                "customer": external_id,
                "type": "build.finished",
                "timestamp": (now - dt.timedelta(days=day, hours=build)).isoformat(),
                "properties": {"minutes": 4 + (day * 7 + build * 5) % 23, "repo": f"repo-{build % 3}"},
            }
            for day in range(days)
            for build in range(builds_per_day)
        ]
        events_ingest(events=events)
