"""A customer's discount: `GET/POST/DELETE /api/v1/customers/{external_id}/discount`."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.discounts.api import CouponOutput
from billing.memberships.exceptions import NoDiscount
from billing.memberships.selectors import customer_discount, customer_get
from billing.memberships.services import customer_discount_apply, customer_discount_remove
from kernel.api.fields import StrictCharField


class DiscountOutput(serializers.Serializer):
    coupon = CouponOutput()
    customer = serializers.CharField(source="customer.external_id")
    checkout = serializers.UUIDField(
        source="checkout_id", allow_null=True, help_text="The checkout that redeemed it."
    )
    periods_applied = serializers.IntegerField(help_text="Finalized invoices it discounted.")
    periods_remaining = serializers.IntegerField(allow_null=True, help_text="null: every invoice (forever).")
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class DiscountApplyInput(serializers.Serializer):
    coupon = StrictCharField(max_length=64)


class CustomerDiscountView(APIView):
    """The customer's discount: the coupon it holds (at most one), applied to its next invoices."""

    @extend_schema(
        operation_id="customer_discount_get",
        responses={200: DiscountOutput, 404: OpenApiResponse(description="unknown_customer / no_discount")},
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        redemption = customer_discount(customer=customer)
        if redemption is None:
            raise NoDiscount(f"Customer '{external_id}' has no discount.", details={"customer": external_id})
        return Response(DiscountOutput(redemption).data)

    @extend_schema(
        operation_id="customer_discount_apply",
        description="Redeem a coupon for the customer (it replaces the customer's discount): 201; the coupon it "
        "already holds: 200, nothing counted.",
        request=DiscountApplyInput,
        responses={
            200: DiscountOutput,
            201: DiscountOutput,
            404: OpenApiResponse(description="unknown_customer / unknown_coupon"),
            409: OpenApiResponse(description="coupon_inactive / coupon_expired / coupon_exhausted"),
        },
    )
    @idempotent
    def post(self, request, external_id: str):
        data = DiscountApplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(external_id=external_id)
        redemption, created = customer_discount_apply(
            customer=customer, coupon_code=data.validated_data["coupon"]
        )
        return Response(
            DiscountOutput(customer_discount(customer=customer) or redemption).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="customer_discount_remove",
        description="End the customer's discount (204 also when it had none).",
        responses={204: None, 404: OpenApiResponse(description="unknown_customer")},
    )
    def delete(self, request, external_id: str):
        customer_discount_remove(customer=customer_get(external_id=external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
