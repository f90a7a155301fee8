"""Webhook endpoints API: register, list, remove; each endpoint's delivery log and resend."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.events.models import Delivery, WebhookEndpoint
from billing.events.services import delivery_resend, endpoint_create, endpoint_delete
from kernel.api.fields import StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.errors import ApplicationError

EVENT_TYPES = [
    "membership.updated", "entitlements.changed", "payment.succeeded", "payment.failed", "payment.refunded",
    "credit_note.created", "credit_note.refund_failed",
    "membership.*", "entitlements.*", "payment.*", "credit_note.*",
]  # fmt: skip


class NotFound(ApplicationError):
    code = "not_found"
    status_code = 404


class EndpointInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(EVENT_TYPES), required=False, max_length=20
    )


class EndpointOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "is_active", "disabled_reason", "created_at"]


class DeliveryOutput(serializers.ModelSerializer):
    type = serializers.CharField(source="event.type")

    class Meta:
        model = Delivery
        fields = ["id", "event_id", "type", "customer", "status", "attempts", "last_status_code", "last_error",
                  "last_attempt_at", "next_attempt_at", "succeeded_at", "created_at"]  # fmt: skip


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", details={"id": endpoint_id})
    return endpoint


class EndpointListCreateView(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("WebhookEndpointPage", EndpointOutput),
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=WebhookEndpoint.objects.all(), serializer_class=EndpointOutput,
            ordering="id",
        )  # fmt: skip

    @extend_schema(
        operation_id="webhook_endpoints_create", request=EndpointInput, responses={201: EndpointOutput}
    )
    @idempotent(redact=("secret",))
    def post(self, request):
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = endpoint_create(**data.validated_data)
        return Response({**EndpointOutput(endpoint).data, "secret": secret}, status=status.HTTP_201_CREATED)


class EndpointDetailView(APIView):
    @extend_schema(operation_id="webhook_endpoints_delete", responses={204: None})
    def delete(self, request, endpoint_id: int):
        if not endpoint_delete(endpoint_id=endpoint_id):
            raise NotFound("No such webhook endpoint.", details={"id": endpoint_id})
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryListView(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("DeliveryPage", DeliveryOutput),
    )
    def get(self, request, endpoint_id: int):
        return paginated_response(
            request=request, view=self, queryset=_endpoint(endpoint_id).deliveries.select_related("event"),
            serializer_class=DeliveryOutput,
        )  # fmt: skip


class DeliveryResendView(APIView):
    @extend_schema(operation_id="webhook_deliveries_resend", request=None, responses={202: DeliveryOutput})
    @idempotent
    def post(self, request, endpoint_id: int, delivery_id: int):
        delivery = (
            Delivery.objects.filter(pk=delivery_id, endpoint_id=endpoint_id).select_related("event").first()
        )
        if delivery is None:
            raise NotFound("No such delivery.", details={"id": delivery_id})
        return Response(
            DeliveryOutput(delivery_resend(delivery=delivery)).data, status=status.HTTP_202_ACCEPTED
        )
