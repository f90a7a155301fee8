"""Customers API: `/api/v1/customers` (upsert, list) and `/api/v1/customers/{external_id}`."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.memberships.models import ENTITLED_STATUSES, EXTERNAL_ID_PATTERN, Checkout, Customer, Membership
from billing.memberships.selectors import (
    customer_get,
    customer_list,
    customer_tier,
    membership_current,
    membership_get,
)
from billing.memberships.services import (
    checkout_create,
    customer_patch,
    customer_upsert,
    membership_cancel,
    membership_change,
    membership_pause,
    membership_portal_url,
)
from kernel.api.fields import StrictCharField, StrictRegexField
from kernel.api.pagination import PAGE_PARAMETERS, CursorPagination, page_schema

MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500


def validate_metadata(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object of string keys to string values.")
    if len(value) > MAX_METADATA_KEYS:
        raise serializers.ValidationError(f"At most {MAX_METADATA_KEYS} keys.")
    for key, item in value.items():
        if not (1 <= len(key) <= 40):
            raise serializers.ValidationError(f"Key '{key[:40]}' must be 1-40 characters.")
        if item is not None and (
            not isinstance(item, str | int | float | bool) or len(str(item)) > MAX_METADATA_VALUE
        ):
            raise serializers.ValidationError(
                f"Value of '{key}' must be a string, number or boolean of at most {MAX_METADATA_VALUE} characters (null removes it)."
            )
    return value


def _country_field():
    return StrictRegexField(
        r"^([A-Za-z]{2})?$",
        required=False,
        allow_blank=True,
        help_text="ISO 3166-1 alpha-2 (`DE`); picks the tax rates that apply. Empty clears it.",
    )


def _tax_exempt_field():
    return serializers.BooleanField(required=False, help_text="Charge this customer no tax.")


class CustomerOutput(serializers.ModelSerializer):
    country = serializers.CharField(allow_blank=True)
    tax_exempt = serializers.BooleanField()

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "email",
            "name",
            "metadata",
            "country",
            "tax_exempt",
            "created_at",
            "updated_at",
        ]


class CustomerWithTierOutput(CustomerOutput):
    tier = serializers.SerializerMethodField()

    class Meta(CustomerOutput.Meta):
        fields = [*CustomerOutput.Meta.fields, "tier"]

    def get_tier(self, customer) -> str | None:
        tier = customer_tier(customer=customer)
        return tier.code if tier else None


class CustomerUpsertInput(serializers.Serializer):
    external_id = StrictRegexField(EXTERNAL_ID_PATTERN, max_length=255)
    email = serializers.EmailField(required=False, allow_blank=True)
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    metadata = serializers.JSONField(required=False, validators=[validate_metadata])
    country = _country_field()
    tax_exempt = _tax_exempt_field()
    tier = StrictCharField(
        required=False,
        max_length=64,
        help_text="Put the customer on this tier now, without a payment (a manual membership).",
    )


class CustomerPatchInput(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    metadata = serializers.JSONField(required=False, validators=[validate_metadata])
    country = _country_field()
    tax_exempt = _tax_exempt_field()


class CustomerListFilters(serializers.Serializer):
    email = serializers.EmailField(required=False)
    search = serializers.CharField(required=False, max_length=100)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class CustomerListCreateView(APIView):
    @extend_schema(
        operation_id="customers_list",
        parameters=[CustomerListFilters, *PAGE_PARAMETERS],
        responses=page_schema("CustomerPage", CustomerOutput),
    )
    def get(self, request):
        filters = CustomerListFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(customer_list(**filters.validated_data), request, view=self)
        return paginator.get_paginated_response(CustomerOutput(page, many=True).data)

    @extend_schema(
        operation_id="customers_upsert",
        description="Create the customer, or update the given fields of an existing one (201 / 200).",
        request=CustomerUpsertInput,
        responses={200: CustomerWithTierOutput, 201: CustomerWithTierOutput},
    )
    @idempotent
    def post(self, request):
        data = CustomerUpsertInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        tier_code = values.pop("tier", None)
        customer, created = customer_upsert(**values, tier_code=tier_code)
        return Response(
            CustomerWithTierOutput(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class CustomerDetailView(APIView):
    @extend_schema(operation_id="customers_get", responses=CustomerWithTierOutput)
    def get(self, request, external_id: str):
        return Response(CustomerWithTierOutput(customer_get(external_id=external_id)).data)

    @extend_schema(operation_id="customers_update", request=CustomerPatchInput, responses=CustomerOutput)
    def patch(self, request, external_id: str):
        data = CustomerPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(CustomerOutput(customer_patch(external_id=external_id, **data.validated_data)).data)


class CheckoutInput(serializers.Serializer):
    customer = StrictRegexField(EXTERNAL_ID_PATTERN, max_length=255)
    tier = StrictCharField(required=False, max_length=64)
    price = StrictCharField(required=False, max_length=64)
    provider = StrictCharField(required=False, max_length=16)
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=10_000, default=1)
    success_url = serializers.URLField(max_length=2000)
    cancel_url = serializers.URLField(max_length=2000)
    coupon = StrictCharField(
        required=False,
        max_length=64,
        help_text="A coupon code: checked now, redeemed when the checkout completes.",
    )

    def validate(self, attrs):
        if ("tier" in attrs) == ("price" in attrs):
            raise serializers.ValidationError("Give exactly one of 'tier' or 'price'.")
        return attrs


class CheckoutOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    customer = serializers.CharField(source="customer.external_id")
    price = serializers.CharField(source="price.code")
    coupon = serializers.CharField(source="coupon.code", allow_null=True, default=None)

    class Meta:
        model = Checkout
        fields = ["id", "url", "status", "customer", "price", "provider", "quantity", "coupon", "expires_at"]

    def get_url(self, checkout) -> str:
        request = self.context.get("request")
        return (
            request.build_absolute_uri(checkout.url)
            if request and checkout.url.startswith("/")
            else checkout.url
        )


class CheckoutCreateView(APIView):
    """Start a checkout; send the customer to `url`. Membership follows from the provider's webhooks."""

    @extend_schema(
        operation_id="checkouts_create",
        request=CheckoutInput,
        responses={
            201: CheckoutOutput,
            409: OpenApiResponse(description="coupon_inactive / coupon_expired / coupon_exhausted"),
            422: OpenApiResponse(description="coupon_not_applicable: another tier or currency"),
        },
    )
    @idempotent
    def post(self, request):
        data = CheckoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        checkout = checkout_create(
            customer=customer_get(external_id=values["customer"]),
            price_code=values.get("price"),
            tier_code=values.get("tier"),
            provider=values.get("provider"),
            quantity=values["quantity"],
            success_url=values["success_url"],
            cancel_url=values["cancel_url"],
            coupon_code=values.get("coupon"),
        )
        return Response(
            CheckoutOutput(checkout, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class MembershipOutput(serializers.ModelSerializer):
    tier = serializers.CharField(source="tier.code")
    price = serializers.CharField(source="price.code", allow_null=True, default=None)
    creator = serializers.CharField(
        source="creator.handle", allow_null=True, default=None,
        help_text="The creator whose channel tier this is; null: the platform's plan.",
    )  # fmt: skip

    class Meta:
        model = Membership
        fields = [
            "id", "tier", "price", "creator", "status", "provider", "provider_subscription_id", "quantity", "started_at",
            "current_period_start", "current_period_end", "cancel_at_period_end", "ended_at",
        ]  # fmt: skip


class CustomerMembershipView(APIView):
    """The customer's live plan membership (or the latest ended one), with the tier it grants now;
    with `?creator=<handle>`, their membership of that creator's channel instead (a customer holds
    one live membership per owner: the plan, and one per creator they support)."""

    @extend_schema(
        operation_id="memberships_current",
        parameters=[
            OpenApiParameter(
                "creator",
                str,
                required=False,
                description="A creator's handle: the customer's membership of that creator's channel tiers.",
            )  # fmt: skip
        ],
        responses=inline_serializer(
            "CurrentMembership",
            {
                "membership": MembershipOutput(
                    allow_null=True, help_text="null: the customer never had one."
                ),
                "tier": serializers.CharField(allow_null=True, help_text="The tier it grants now."),
            },
        ),
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        handle = request.query_params.get("creator")
        if handle is not None:
            if not handle or len(handle) > 40 or "\x00" in handle:
                raise serializers.ValidationError({"creator": ["Give a creator's handle."]})
            membership = membership_current(customer=customer, creator_handle=handle)
            entitled = membership is not None and membership.status in ENTITLED_STATUSES
            tier = membership.tier if entitled else None
        else:
            membership = membership_current(customer=customer)
            tier = customer_tier(customer=customer)
        return Response(
            {
                "membership": MembershipOutput(membership).data if membership else None,
                "tier": tier.code if tier else None,
            }
        )


class MembershipCancelInput(serializers.Serializer):
    at_period_end = serializers.BooleanField(default=True)


class MembershipCancelView(APIView):
    """Cancel now or at period end; a provider membership changes when the provider's webhook arrives."""

    @extend_schema(
        operation_id="memberships_cancel", request=MembershipCancelInput, responses={202: MembershipOutput}
    )
    @idempotent
    def post(self, request, membership_id: int):
        data = MembershipCancelInput(data=request.data if request.body else {})
        data.is_valid(raise_exception=True)
        membership = membership_cancel(
            membership=membership_get(membership_id=membership_id),
            at_period_end=data.validated_data["at_period_end"],
        )
        return Response(MembershipOutput(membership).data, status=status.HTTP_202_ACCEPTED)


class MembershipChangeInput(serializers.Serializer):
    tier = StrictCharField(required=False, max_length=64)
    price = StrictCharField(required=False, max_length=64)
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=10_000)

    def validate(self, attrs):
        if "tier" in attrs and "price" in attrs:
            raise serializers.ValidationError("Give at most one of 'tier' or 'price'.")
        if not attrs:
            raise serializers.ValidationError("Give a tier, a price or a quantity.")
        return attrs


class MembershipChangeView(APIView):
    """Upgrade now (prorated), downgrade at period end, or change seats. `{"applies": "now" |
    "at_period_end"}`; a provider membership changes when its webhook arrives."""

    @extend_schema(
        operation_id="memberships_change",
        request=MembershipChangeInput,
        responses={
            202: inline_serializer(
                "MembershipChangeAccepted", {"applies": serializers.ChoiceField(["now", "at_period_end"])}
            )
        },
    )
    @idempotent
    def post(self, request, membership_id: int):
        data = MembershipChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        applies = membership_change(
            membership=membership_get(membership_id=membership_id),
            price_code=values.get("price"),
            tier_code=values.get("tier"),
            quantity=values.get("quantity"),
        )
        return Response({"applies": applies}, status=status.HTTP_202_ACCEPTED)


class MembershipPauseView(APIView):
    paused = True

    @extend_schema(request=None, responses={202: MembershipOutput})
    @idempotent
    def post(self, request, membership_id: int):
        membership = membership_pause(
            membership=membership_get(membership_id=membership_id), paused=self.paused
        )
        return Response(MembershipOutput(membership).data, status=status.HTTP_202_ACCEPTED)


class MembershipResumeView(MembershipPauseView):
    paused = False


class MembershipPortalView(APIView):
    """Where the customer manages payment details and invoices: the provider's customer portal
    (the sandbox's is the tenant's own Plan & usage page)."""

    @extend_schema(
        operation_id="memberships_portal",
        responses=inline_serializer("Portal", {"url": serializers.URLField()}),
    )
    def get(self, request, membership_id: int):
        url = membership_portal_url(membership=membership_get(membership_id=membership_id))
        return Response({"url": request.build_absolute_uri(url) if url.startswith("/") else url})
