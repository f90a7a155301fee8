"""Tax rates, and the discounts and taxes recorded on an invoice (frozen with it)."""

import pgtrigger
from django.db import models
from django.db.models import Q

from billing.invoicing.models.invoices import Invoice

TAX_RATE_TERMS = ["name", "percent", "inclusive", "country"]


@pgtrigger.register(
    pgtrigger.ReadOnly(name="tax_rate_terms_immutable", fields=TAX_RATE_TERMS),
    pgtrigger.Protect(name="tax_rate_no_delete", operation=pgtrigger.Delete),
)
class TaxRate(models.Model):
    """A tax the tenant charges customers in `country` (blank: every customer), `percent` of each
    line's amount after discounts: added to the total (exclusive) or carved out of it (inclusive).
    Terms are immutable and a rate is never deleted: a change is a new rate, the old one deactivated."""

    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField(default=False)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2; blank: all.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gt=0) & Q(percent__lte=100), name="invoicing_tax_rate_percent"
            ),
            models.CheckConstraint(
                condition=Q(country__regex=r"^([A-Z]{2})?$"), name="invoicing_tax_rate_country"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.percent}%"


_FROZEN_WITH_INVOICE = """
    IF (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft' THEN
        RAISE EXCEPTION 'the discounts and taxes of a finalized invoice cannot change (issue a credit note)';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
"""


@pgtrigger.register(
    pgtrigger.Trigger(
        name="invoice_discount_frozen_with_invoice",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        func=_FROZEN_WITH_INVOICE,
    ),
)
class InvoiceDiscount(models.Model):
    """What a customer's coupon (its redemption) took off an invoice: "Discount (CODE)". Unique per
    (redemption, invoice), so finalizing an invoice uses one of a redemption's periods at most once."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="discounts")
    redemption = models.ForeignKey(
        "memberships.CouponRedemption", on_delete=models.PROTECT, related_name="invoice_discounts"
    )
    coupon_code = models.CharField(max_length=64)
    coupon_name = models.CharField(max_length=200, blank=True)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["redemption", "invoice"], name="invoicing_discount_once_per_invoice"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoicing_discount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Discount ({self.coupon_code})"


@pgtrigger.register(
    pgtrigger.Trigger(
        name="invoice_tax_frozen_with_invoice",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        func=_FROZEN_WITH_INVOICE,
    ),
)
class InvoiceTax(models.Model):
    """A tax on an invoice as charged (the rate's name, percent, inclusive flag and country kept):
    the lines' taxable amount and the tax, the sum of each line's rounded tax."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes")
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField()
    country = models.CharField(max_length=2, blank=True)
    taxable_amount = models.BigIntegerField()
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "tax_rate"], name="invoicing_tax_once_per_invoice"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoicing_tax_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Tax ({self.name}, {self.percent}%)"


class CreditValue(models.Model):
    """What one credit pays, in minor units of `currency`, when credits pay for usage: the tenant's
    say-so (Stripe's billing credits, Lago's wallets). At close, a customer's usable credits pay
    the usage lines of its invoices in that currency; a currency without a row: credits pay for
    nothing there. Changing the value changes only invoices finalized afterwards."""

    currency = models.CharField(max_length=3, unique=True)
    unit_amount_decimal = models.DecimalField(
        max_digits=20, decimal_places=12, help_text="Minor units of the currency one credit pays."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_amount_decimal__gt=0), name="invoicing_credit_value_positive"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="invoicing_credit_value_currency"
            ),
        ]

    def __str__(self) -> str:
        return f"1 credit = {self.unit_amount_decimal.normalize()} {self.currency} minor units"
