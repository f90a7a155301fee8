"""Billing engine API: the pricing calculator (`GET /api/v1/prices/{code}/quote`) and invoices."""

from __future__ import annotations

from types import SimpleNamespace as Row

from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.invoicing.credit_notes_api import CreditNoteBriefOutput
from billing.invoicing.pdf import invoice_pdf_response
from billing.invoicing.rating import breakdown_rows
from billing.invoicing.selectors import invoice_get, invoice_list, price_quote
from billing.invoicing.services import invoice_mark_uncollectible, invoice_void
from billing.invoicing.upcoming import invoice_upcoming
from billing.memberships.selectors import customer_get
from billing.metering.credit_models import credits_text
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.decimals import decimal_text


class QuoteSliceOutput(serializers.Serializer):
    first = serializers.CharField(help_text="First unit of the slice (decimal string).")
    last = serializers.CharField(allow_null=True, help_text="Last unit of the tier; null: no end.")
    quantity = serializers.CharField(help_text="Units (packages, for package prices) billed in the slice.")
    unit_amount = serializers.CharField(help_text="Minor units per unit; may be fractional.")
    flat_amount = serializers.IntegerField(help_text="The tier's flat amount, minor units.")
    amount = serializers.CharField(help_text="Exact, before the line's one rounding (minor units).")


class QuoteOutput(serializers.Serializer):
    price = serializers.CharField()
    model = serializers.CharField()
    currency = serializers.CharField()
    quantity = serializers.CharField(help_text="Decimal string.")
    amount = serializers.IntegerField(help_text="Minor units, rounded once half-up.")
    breakdown = QuoteSliceOutput(many=True)


class PriceQuoteView(APIView):
    """What `quantity` units of an active price cost, with the tier-by-tier breakdown (graduated,
    volume, package, per unit; fractional unit amounts rounded once per line, half-up)."""

    @extend_schema(
        operation_id="prices_quote",
        parameters=[
            OpenApiParameter(
                "quantity", str, required=True, description="Units: an integer or decimal string ≥ 0."
            )
        ],
        responses={
            200: QuoteOutput,
            400: OpenApiResponse(description="invalid_quantity"),
            404: OpenApiResponse(description="unknown_price"),
        },
    )
    def get(self, request, code: str):
        price, rated = price_quote(code=code, quantity=request.query_params.get("quantity", ""))
        return Response(
            {
                "price": price.code,
                "model": price.model,
                "currency": rated.currency,
                "quantity": decimal_text(rated.quantity),
                "amount": rated.amount,
                "breakdown": breakdown_rows(rated),
            }
        )


class InvoiceLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.SerializerMethodField(help_text="Decimal string.")
    unit_amount = serializers.SerializerMethodField(help_text="Minor units per unit (decimal string).")
    amount = serializers.IntegerField(help_text="Minor units, rounded once half-up.")
    price = serializers.SerializerMethodField()
    meter = serializers.CharField(allow_blank=True)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    proration = serializers.BooleanField()
    breakdown = serializers.ListField(child=serializers.DictField())
    discount_amount = serializers.IntegerField(help_text="This line's share of the invoice's discounts.")
    tax_amount = serializers.IntegerField(
        help_text="This line's tax (inclusive and exclusive), rounded once."
    )

    def get_quantity(self, line) -> str:
        return decimal_text(line.quantity)

    def get_unit_amount(self, line) -> str:
        return decimal_text(line.unit_amount)

    def get_price(self, line) -> int | None:
        return line.price_id


class InvoiceDiscountOutput(serializers.Serializer):
    coupon = serializers.CharField(source="coupon_code")
    name = serializers.CharField(source="coupon_name", allow_blank=True)
    amount = serializers.IntegerField(help_text="Minor units taken off.")


class InvoiceTaxOutput(serializers.Serializer):
    name = serializers.CharField()
    percent = serializers.SerializerMethodField(help_text="Decimal string.")
    inclusive = serializers.BooleanField(help_text="Included in the amounts (does not add to the total).")
    country = serializers.CharField(allow_blank=True)
    taxable_amount = serializers.IntegerField(help_text="The lines after discounts, without inclusive tax.")
    amount = serializers.IntegerField()

    def get_percent(self, tax) -> str:
        return decimal_text(tax.percent)


class InvoiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(
        allow_blank=True,
        help_text="Empty while draft; gapless per tenant. A mirrored invoice (collected_by=provider) "
        "shows its provider's own number.",
    )
    status = serializers.ChoiceField(choices=["draft", "open", "paid", "void", "uncollectible"])
    customer = serializers.CharField(source="customer.external_id")
    currency = serializers.CharField()
    subtotal = serializers.IntegerField()
    discount = serializers.IntegerField(help_text="What its coupons took off.")
    credits_applied = serializers.IntegerField(
        help_text="What the customer's credits paid of its usage lines (minor units; not in `discount`)."
    )
    credits_used = serializers.SerializerMethodField(help_text="Credits that took (decimal string).")
    tax = serializers.IntegerField()
    total = serializers.IntegerField(help_text="subtotal - discount - credits_applied + exclusive tax.")
    amount_paid = serializers.IntegerField()
    amount_credited = serializers.IntegerField(help_text="The total of its credit notes.")
    amount_due = serializers.IntegerField()
    billing_reason = serializers.CharField()
    collected_by = serializers.CharField()
    provider = serializers.CharField(allow_blank=True)
    provider_invoice_id = serializers.CharField(
        allow_blank=True,
        help_text="The provider's id of a mirrored invoice (Polar and Lemon Squeezy: the order).",
    )
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    customer_details = serializers.DictField()
    created_at = serializers.DateTimeField()
    finalized_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    lines = InvoiceLineOutput(many=True)
    credit_notes = CreditNoteBriefOutput(many=True, help_text="Oldest first.")
    discounts = InvoiceDiscountOutput(many=True, help_text="The coupons that discounted it.")
    taxes = InvoiceTaxOutput(
        many=True, help_text="Each tax rate charged (inclusive ones already in the amounts)."
    )

    def get_credits_used(self, invoice) -> str:
        return credits_text(invoice.credits_used)

    def to_representation(self, invoice):
        data = super().to_representation(invoice)
        data["credit_notes"].sort(key=lambda note: note["id"])
        return data


NOT_FOUND = OpenApiResponse(description="unknown_invoice / unknown_customer")


class CustomerInvoiceListView(APIView):
    """A customer's invoices, newest first (cursor-paginated)."""

    @extend_schema(
        operation_id="customer_invoices_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("InvoicePage", InvoiceOutput), 404: NOT_FOUND},
    )
    def get(self, request, external_id: str):
        invoices = invoice_list(customer=customer_get(external_id=external_id))
        return paginated_response(
            request=request, view=self, queryset=invoices, serializer_class=InvoiceOutput
        )


class InvoiceDetailView(APIView):
    @extend_schema(operation_id="invoices_get", responses={200: InvoiceOutput, 404: NOT_FOUND})
    def get(self, request, invoice_id: int):
        return Response(InvoiceOutput(invoice_get(invoice_id=invoice_id)).data)


class _InvoiceActionView(APIView):
    """POST /invoices/{id}/<action>: one invoice service, answered with the invoice."""

    service = None

    @idempotent
    def post(self, request, invoice_id: int):
        type(self).service(invoice_id=invoice_get(invoice_id=invoice_id).pk)
        return Response(InvoiceOutput(invoice_get(invoice_id=invoice_id)).data, status=status.HTTP_200_OK)


ACTION_RESPONSES = {200: InvoiceOutput, 404: NOT_FOUND, 409: OpenApiResponse(description="invoice_state")}


@extend_schema_view(
    post=extend_schema(
        operation_id="invoices_void", request=None, responses=ACTION_RESPONSES,
        description="Void an open or uncollectible invoice nothing was paid on (its number stays used).",
    )
)  # fmt: skip
class InvoiceVoidView(_InvoiceActionView):
    service = invoice_void


@extend_schema_view(
    post=extend_schema(
        operation_id="invoices_mark_uncollectible", request=None, responses=ACTION_RESPONSES,
        description="Stop collecting an open invoice (a later payment still settles it).",
    )
)  # fmt: skip
class InvoiceUncollectibleView(_InvoiceActionView):
    service = invoice_mark_uncollectible


class UpcomingLineOutput(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.SerializerMethodField(help_text="Decimal string.")
    unit_amount = serializers.SerializerMethodField(help_text="Minor units per unit (decimal string).")
    amount = serializers.IntegerField()
    price = serializers.IntegerField(source="price_id", allow_null=True)
    meter = serializers.CharField(allow_blank=True)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    breakdown = serializers.ListField(child=serializers.DictField())
    discount_amount = serializers.IntegerField()
    tax_amount = serializers.IntegerField()

    def get_quantity(self, line) -> str:
        return decimal_text(line.quantity)

    def get_unit_amount(self, line) -> str:
        return decimal_text(line.unit_amount)


class UpcomingInvoiceOutput(serializers.Serializer):
    customer = serializers.CharField()
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(help_text="The usage period this invoice would close.")
    period_end = serializers.DateTimeField()
    subtotal = serializers.IntegerField()
    discount = serializers.IntegerField()
    credits_applied = serializers.IntegerField(
        help_text="What the customer's credits would pay of the usage now (they are spent at close)."
    )
    tax = serializers.IntegerField()
    total = serializers.IntegerField()
    lines = UpcomingLineOutput(many=True)
    discounts = InvoiceDiscountOutput(many=True)
    taxes = InvoiceTaxOutput(many=True)


class UpcomingInvoiceView(APIView):
    """The invoice the customer's current period would produce if it closed now: usage so far on the
    tier's usage prices (rated exactly as the period close will) and the next period's fee."""

    @extend_schema(
        operation_id="customer_invoices_upcoming",
        responses={
            200: UpcomingInvoiceOutput,
            404: OpenApiResponse(description="unknown_customer / no_upcoming_invoice"),
        },
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        charges = invoice_upcoming(customer=customer)
        adjusted = charges.adjusted
        return Response(
            UpcomingInvoiceOutput(
                {
                    "customer": customer.external_id,
                    "currency": charges.currency,
                    "period_start": charges.period_start,
                    "period_end": charges.period_end,
                    "subtotal": charges.subtotal,
                    "discount": charges.discount,
                    "credits_applied": adjusted.credits_applied,
                    "tax": charges.tax,
                    "total": charges.total,
                    "lines": [
                        Row(**vars(line), discount_amount=share.discount, tax_amount=share.tax)
                        for line, share in zip(charges.lines, adjusted.lines, strict=True)
                    ],
                    "discounts": [
                        Row(coupon_code=d.discount.code, coupon_name=d.discount.name, amount=d.amount)
                        for d in adjusted.discounts
                        if d.amount > 0
                    ],
                    "taxes": [
                        Row(
                            name=t.rate.name,
                            percent=t.rate.percent,
                            inclusive=t.rate.inclusive,
                            country=t.rate.country,
                            taxable_amount=t.taxable,
                            amount=t.amount,
                        )
                        for t in adjusted.taxes
                    ],  # fmt: skip
                }
            ).data
        )


class _JsonErrors(BaseContentNegotiation):
    """The PDF view answers a PDF whatever the Accept header; its errors are JSON like every other."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class InvoicePdfView(APIView):
    """The invoice as a PDF: the tenant's name and billing address (Settings), the customer as billed,
    lines with their tier breakdown, totals. Drafts are marked DRAFT."""

    content_negotiation_class = _JsonErrors

    @extend_schema(
        operation_id="invoices_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
            404: NOT_FOUND,
        },
    )
    def get(self, request, invoice_id: int):
        return invoice_pdf_response(invoice=invoice_get(invoice_id=invoice_id), tenant=connection.tenant)
