from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class FailureMode(models.TextChoices):
    OPEN = "open", "Fail open (allow)"
    CLOSED = "closed", "Fail closed (refuse)"


class UnknownUsageCustomer(models.TextChoices):
    REJECT = "reject", "Reject the event"
    CREATE = "create", "Create the customer"


class Tenant(TenantMixin):
    """A platform business. Its users, customers and money live in its own schema (`schema_name`).

    The row for the public schema (`schema_name="public"`) is the operator's own and serves the bare
    host. Schemas are created by `tenants.services.tenant_create` (a clone of the template schema),
    never by `save()`.
    """

    auto_create_schema = False
    auto_drop_schema = False

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    rate_limit_failure_mode = models.CharField(
        max_length=6,
        choices=FailureMode.choices,
        default=FailureMode.OPEN,
        help_text="What rate limits do while Redis is unreachable.",
    )
    unknown_usage_customer = models.CharField(
        max_length=6,
        choices=UnknownUsageCustomer.choices,
        default=UnknownUsageCustomer.REJECT,
        help_text="What event ingestion does with a customer id it does not know.",
    )
    suspended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set: its site and API answer 403 `tenant_suspended` (webhooks still land).",
    )
    invoice_address = models.TextField(
        blank=True, max_length=500, help_text="The business's billing address, printed on its invoices."
    )
    # branding: on its pages, the hosted sandbox checkout and its emails (tenants.branding)
    brand_color = models.CharField(
        max_length=7, blank=True, default="",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour is #RRGGBB.")],
        help_text="The business's colour (#RRGGBB): buttons and links on its pages.",
    )  # fmt: skip
    support_email = models.EmailField(
        blank=True, help_text="Where customers write: shown on its pages and the Reply-To of its emails."
    )
    # creators (billing.ledger.creators): what the platform keeps, how long earnings are held, tips
    creator_fee_bps = models.PositiveIntegerField(
        default=1000,
        validators=[MaxValueValidator(10_000)],
        help_text="The platform's fee on creators' sales and tips, in basis points (1000 = 10 %); "
        "each earning records the rate it was split at, so a change never rewrites history.",
    )
    earnings_hold_days = models.PositiveIntegerField(
        default=7,
        validators=[MaxValueValidator(365)],
        help_text="Days a creator's earning stays pending before it becomes available.",
    )
    tip_min_amount = models.PositiveBigIntegerField(
        default=100, help_text="The smallest tip, in minor units of its currency."
    )
    tip_max_amount = models.PositiveBigIntegerField(
        default=50_000, help_text="The largest tip, in minor units of its currency."
    )
    payout_min_amount = models.PositiveBigIntegerField(
        default=1000, help_text="The smallest payout to a creator, in minor units of its currency."
    )
    payout_schedule = models.CharField(
        max_length=8,
        choices=[
            ("manual", "Manual (creators request)"),
            ("weekly", "Weekly (Mondays)"),
            ("monthly", "Monthly (the 1st)"),
        ],
        default="manual",
        help_text="When creators' available balances are paid out by themselves.",
    )
    sandbox_fee_bps = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(10_000)],
        help_text="The fee the sandbox provider keeps of each charge, in basis points (0: none), so "
        "demos and tests see provider fees as a real provider reports them.",
    )

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(creator_fee_bps__lte=10_000),
                name="tenants_creator_fee_at_most_100_percent",
            ),
            models.CheckConstraint(
                condition=models.Q(tip_min_amount__lte=models.F("tip_max_amount")),
                name="tenants_tip_min_not_above_max",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    """A host name routed to a tenant; exactly one per tenant is primary."""

    def __str__(self) -> str:
        return self.domain


class TenantLogo(models.Model):
    """The logo printed on a tenant's invoices: a PNG we re-encoded from the owner's upload (so no
    hostile file or metadata is kept), at most LOGO_MAX_SIZE pixels. Kept off Tenant, which is read
    and cached on every request."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="logo")
    png = models.BinaryField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"logo of {self.tenant_id} ({self.width}×{self.height})"
