"""Credit notes API: `POST/GET /api/v1/invoices/{id}/credit-notes`, `GET /api/v1/credit-notes/{id}`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.invoicing.credit_notes import credit_note_create
from billing.invoicing.models import CreditNoteOrigin, CreditNoteReason, CreditNoteStatus
from billing.invoicing.selectors import credit_note_get, credit_note_list, invoice_get
from kernel.api.fields import BIGINT_MAX, StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response


class StrictIntegerField(serializers.IntegerField):
    """An integer and nothing else: "12", 12.0 and true are a 400 (money is never coerced)."""

    default_error_messages = {"invalid": "Must be an integer (minor units)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CreditNoteLineInput(serializers.Serializer):
    line = StrictIntegerField(min_value=1, max_value=BIGINT_MAX, help_text="An invoice line's id.")
    amount = StrictIntegerField(min_value=1, max_value=BIGINT_MAX, help_text="Minor units.")


class CreditNoteInput(serializers.Serializer):
    amount = StrictIntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Minor units; or give `lines`."
    )
    lines = CreditNoteLineInput(many=True, required=False, min_length=1, max_length=500)
    reason = serializers.ChoiceField(choices=CreditNoteReason.values, default=CreditNoteReason.OTHER)
    memo = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
    refund = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Return what was paid through the provider that collected it (else: credited out of band).",
    )

    def validate(self, attrs):
        if ("amount" in attrs) == ("lines" in attrs):
            raise serializers.ValidationError("Give either `amount` or `lines`.")
        return attrs


class CreditNoteLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    invoice_line = serializers.IntegerField(source="invoice_line_id")
    description = serializers.CharField()
    amount = serializers.IntegerField()


class CreditNoteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(help_text="The invoice's number + `-CN<n>`.")
    invoice = serializers.IntegerField(source="invoice_id")
    invoice_number = serializers.CharField(source="invoice.number")
    customer = serializers.CharField(source="invoice.customer.external_id")
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text="pre_payment_amount + refund_amount + credit_amount.")
    pre_payment_amount = serializers.IntegerField(help_text="Lowered what was still due on the invoice.")
    refund_amount = serializers.IntegerField(help_text="Returned through the provider that collected.")
    credit_amount = serializers.IntegerField(help_text="Credited out of band.")
    reason = serializers.ChoiceField(choices=CreditNoteReason.values)
    memo = serializers.CharField(allow_blank=True)
    origin = serializers.ChoiceField(
        choices=CreditNoteOrigin.values, help_text="`provider`: a refund made at the provider itself."
    )
    status = serializers.ChoiceField(choices=CreditNoteStatus.values)
    provider = serializers.CharField(allow_blank=True)
    provider_refund_id = serializers.CharField(allow_blank=True)
    refund_error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    refunded_at = serializers.DateTimeField(allow_null=True)
    lines = CreditNoteLineOutput(many=True)


class CreditNoteBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    amount = serializers.IntegerField()
    refund_amount = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=CreditNoteReason.values)
    status = serializers.ChoiceField(choices=CreditNoteStatus.values)
    created_at = serializers.DateTimeField()


NOT_FOUND = OpenApiResponse(description="unknown_invoice / unknown_credit_note")


class InvoiceCreditNotesView(APIView):
    """An invoice's credit notes; POST issues one (and refunds through the provider with `refund`)."""

    @extend_schema(
        operation_id="invoice_credit_notes_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("CreditNotePage", CreditNoteOutput), 404: NOT_FOUND},
    )
    def get(self, request, invoice_id: int):
        notes = credit_note_list(invoice=invoice_get(invoice_id=invoice_id))
        return paginated_response(
            request=request, view=self, queryset=notes, serializer_class=CreditNoteOutput
        )

    @extend_schema(
        operation_id="invoice_credit_notes_create",
        request=CreditNoteInput,
        responses={
            201: CreditNoteOutput,
            400: OpenApiResponse(
                description="validation_error / invalid_credit_note / credit_exceeds_total / credit_exceeds_paid / "
                "credit_exceeds_line / unknown_invoice_line / no_payment_to_refund / refund_exceeds_payment"
            ),
            404: NOT_FOUND,
            409: OpenApiResponse(
                description="invoice_state (draft or void) / provider_not_supported / refund_refused / "
                "idempotency_key_reused"
            ),
        },
    )
    @idempotent
    def post(self, request, invoice_id: int):
        data = CreditNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        note = credit_note_create(
            invoice_id=invoice_get(invoice_id=invoice_id).pk,
            amount=args.get("amount"),
            lines=[dict(item) for item in args["lines"]] if "lines" in args else None,
            reason=args["reason"],
            memo=args["memo"],
            refund=args["refund"],
        )
        return Response(
            CreditNoteOutput(credit_note_get(credit_note_id=note.pk)).data, status=status.HTTP_201_CREATED
        )


class CreditNoteDetailView(APIView):
    @extend_schema(operation_id="credit_notes_get", responses={200: CreditNoteOutput, 404: NOT_FOUND})
    def get(self, request, credit_note_id: int):
        return Response(CreditNoteOutput(credit_note_get(credit_note_id=credit_note_id)).data)
