import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, NullIf

# what an integrator may use as a customer's external id (it appears in URLs)
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,254}$"


def customer_label(prefix: str = ""):
    """What lists call a customer: their name, else their email, else their external id (`prefix`
    "customer__" from a row that points at one). Indexed, so a list can sort by it."""
    blank = models.Value("")
    return Coalesce(NullIf(f"{prefix}name", blank), NullIf(f"{prefix}email", blank), f"{prefix}external_id")


class Customer(models.Model):
    """Someone a tenant bills, addressed by the integrator's `external_id` (unique per tenant).
    Optionally the login (`user`) of a person who signed up on the tenant's site."""

    external_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    country = models.CharField(
        max_length=2, blank=True, help_text="ISO 3166-1 alpha-2, upper case: picks the tax rates that apply."
    )
    tax_exempt = models.BooleanField(default=False, help_text="No tax is charged on our invoices.")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^([A-Z]{2})?$"), name="memberships_customer_country"
            ),
        ]
        indexes = [
            # the staff invoice list sorted by customer walks customers in this order, then each
            # one's invoices (billing.invoicing.pages)
            models.Index(customer_label(), models.F("id"), name="memberships_customer_label"),
        ]

    def __str__(self) -> str:
        return self.external_id


class MembershipStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


# statuses whose tier grants entitlements (past_due: during the dunning grace period)
ENTITLED_STATUSES = (MembershipStatus.TRIALING, MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
# at most one membership per customer and owner (the platform, or one creator) in these statuses
LIVE_STATUSES = (*ENTITLED_STATUSES, MembershipStatus.PAUSED, MembershipStatus.INCOMPLETE)


class Membership(models.Model):
    """A customer's subscription to a tier. At most one live membership per customer and owner: the
    platform's own tiers (`creator` empty) make the customer's plan -- what entitlements, quotas and
    usage prices read; a customer without an entitled platform membership is on the default tier --
    and each creator's channel tiers make one more membership per creator the fan supports, beside
    the plan (joining a channel never replaces the plan, nor another creator's membership).
    `creator` is the tier's owner, copied from the tier when saved so the database can hold the
    rule. `provider` is `manual` for memberships granted by staff or the API without a payment."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="memberships")
    tier = models.ForeignKey("tiers.Tier", on_delete=models.PROTECT, related_name="memberships")
    # the tier's owner (a reference by name only: the creators app sits above this one); None: the platform
    creator = models.ForeignKey(
        "creators.Creator", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    price = models.ForeignKey(
        "tiers.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE
    )
    provider = models.CharField(max_length=32, default="manual")
    provider_subscription_id = models.CharField(max_length=255, blank=True)
    provider_customer_id = models.CharField(max_length=255, blank=True)
    # occurred_at of the newest provider event applied: an older event never rolls state back
    provider_event_at = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # when the membership became past_due: entitlements stay for DUNNING_GRACE_DAYS from then
    past_due_since = models.DateTimeField(null=True, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=LIVE_STATUSES, creator__isnull=True),
                name="memberships_one_live_plan_per_customer",
            ),
            models.UniqueConstraint(
                fields=["customer", "creator"],
                condition=models.Q(status__in=LIVE_STATUSES, creator__isnull=False),
                name="memberships_one_live_per_customer_creator",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_subscription_id"],
                condition=~models.Q(provider_subscription_id=""),
                name="memberships_unique_provider_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} on {self.tier} ({self.status})"

    def save(self, *args, **kwargs):
        """The owner follows the tier: read from the tier object at hand (no query), else from the
        database; a save whose update_fields leave the tier out leaves the owner alone."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "tier" in update_fields:
            tier = self._state.fields_cache.get("tier")
            if tier is not None and tier.pk == self.tier_id:
                self.creator_id = tier.creator_id
            else:
                from billing.tiers.models import Tier

                owner = Tier.objects.filter(pk=self.tier_id).values_list("creator_id", flat=True)
                self.creator_id = owner.first()
            if update_fields is not None and "creator" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "creator"]
        super().save(*args, **kwargs)


class MembershipHistory(models.Model):
    """Append-only log of every membership change: what changed, why, and from which event."""

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="history")
    at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=12, choices=MembershipStatus.choices)
    tier = models.ForeignKey("tiers.Tier", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    reason = models.CharField(max_length=64)
    event_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.status} ({self.reason})"


class CheckoutStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"


class Checkout(models.Model):
    """A customer's way to a paid membership: created here, paid at the provider. The row id is
    the idempotency key of the provider call. An open checkout expires at `expires_at`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="checkouts")
    price = models.ForeignKey("tiers.Price", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=16)
    quantity = models.PositiveIntegerField(default=1)
    success_url = models.URLField(max_length=2000)
    cancel_url = models.URLField(max_length=2000)
    status = models.CharField(max_length=10, choices=CheckoutStatus.choices, default=CheckoutStatus.OPEN)
    provider_checkout_id = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    # validated when the checkout began; redeemed (counted) when it completes
    coupon = models.ForeignKey(
        "discounts.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the provider's customer this checkout made (events without our metadata name only that)
    provider_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.id)


class PaymentKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    FAILED = "failed", "Failed charge"
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Dispute opened"
    DISPUTE_WON = "dispute_won", "Dispute closed, won"
    DISPUTE_LOST = "dispute_lost", "Dispute closed, lost"


class Payment(models.Model):
    """Money the provider reports: a successful charge or paid order, a failed charge, a refund, a
    dispute (opened, then closed won or lost). Unique per provider id of that object and kind, so a
    redelivered event records nothing twice and each partial refund is its own row; only paid
    orders are ever recorded as charges (never `order.created`). `reference` is the provider's id of
    the money movement (Stripe's payment intent or charge) that refunds and disputes name;
    `disputed` is the charge a dispute is about; `invoice_ref` the invoice the money is for, as the
    provider names it (see PaymentState.invoice), so an invoice that arrives later still finds it.
    `fee_amount` is what the provider kept of a charge (minor units of `currency`; 0: none reported)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    provider = models.CharField(max_length=16)
    provider_payment_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=12, choices=PaymentKind.choices)
    amount = models.BigIntegerField()
    fee_amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    occurred_at = models.DateTimeField()
    event_id = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True, db_index=True)
    disputed = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="disputes"
    )
    invoice_ref = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id", "kind"], name="memberships_payment_unique"
            ),
            models.CheckConstraint(condition=models.Q(fee_amount__gte=0), name="memberships_payment_fee"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class CouponRedemption(models.Model):
    """A customer's discount: a coupon it redeemed (through a checkout or the API). At most one is
    live (`ended_at` null) per customer; applying another ends it. `periods_applied` counts the
    finalized invoices it discounted (billing.invoicing, once per invoice); a `once` or `repeating`
    redemption ends when that reaches the coupon's periods."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="redemptions")
    coupon = models.ForeignKey("discounts.Coupon", on_delete=models.PROTECT, related_name="redemptions")
    checkout = models.OneToOneField(
        Checkout, null=True, blank=True, on_delete=models.PROTECT, related_name="redemption"
    )
    periods_applied = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(ended_at__isnull=True),
                name="memberships_one_live_redemption_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coupon} for {self.customer}"

    @property
    def periods_remaining(self) -> int | None:
        """Invoices it may still discount (None: every invoice)."""
        periods = self.coupon.periods
        return None if periods is None else max(periods - self.periods_applied, 0)
