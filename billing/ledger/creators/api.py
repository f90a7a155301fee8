"""Creators API: `/api/v1/creators` (create, list), `/creators/{handle}` (with balances),
`/creators/{handle}/onboarding`, `/creators/{handle}/tiers`, the public `/channels/{handle}/tiers`,
and `/tips/checkouts`. Amounts are integer minor units beside a lowercase currency."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.ledger.creators.models import HANDLE_PATTERN, Creator, PayoutStatus, Tip, TipStatus
from billing.ledger.creators.selectors import creator_balance, creator_get, creator_list, creator_tiers
from billing.ledger.creators.services import (
    creator_create,
    creator_onboarding_start,
    creator_tier_create,
    creator_tier_delete,
)
from billing.ledger.creators.tips import tip_checkout_create
from billing.memberships.models import EXTERNAL_ID_PATTERN
from billing.memberships.selectors import customer_get
from billing.tiers.api import tier_as_dict
from kernel.api.fields import BIGINT_MAX, StrictCharField, StrictRegexField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response, single_page

NOT_FOUND = OpenApiResponse(description="unknown_creator")


class AmountField(serializers.IntegerField):
    """Minor units as a JSON integer: "100" or 1.5 is a 400, never coerced."""

    default_error_messages = {"invalid": "Must be an integer (minor units)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if url.startswith("/") else url


class CreatorBalanceOutput(serializers.Serializer):
    currency = serializers.CharField()
    pending = serializers.IntegerField(help_text="Earned, still in the hold period (minor units).")
    available = serializers.IntegerField(
        help_text="Released and not paid out; negative after a refund of a released earning."
    )
    paid_out = serializers.IntegerField()
    lifetime = serializers.IntegerField(help_text="Every earning's net less what refunds took back.")


class CreatorOutput(serializers.Serializer):
    handle = serializers.CharField()
    display_name = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    payout_status = serializers.ChoiceField(choices=PayoutStatus.choices)
    payout_provider = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class CreatorDetailOutput(CreatorOutput):
    balance = serializers.SerializerMethodField()

    @extend_schema_field(CreatorBalanceOutput(many=True))
    def get_balance(self, creator: Creator) -> list[dict]:
        return [
            {"currency": currency, **values} for currency, values in creator_balance(creator=creator).items()
        ]


class CreatorInput(serializers.Serializer):
    handle = StrictRegexField(HANDLE_PATTERN, max_length=40)
    display_name = StrictCharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)


class CreatorListCreateView(APIView):
    @extend_schema(
        operation_id="creators_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("CreatorPage", CreatorOutput),
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=creator_list(), serializer_class=CreatorOutput
        )

    @extend_schema(
        operation_id="creators_create",
        request=CreatorInput,
        responses={201: CreatorDetailOutput, 409: OpenApiResponse(description="creator_exists")},
    )
    @idempotent
    def post(self, request):
        data = CreatorInput(data=request.data)
        data.is_valid(raise_exception=True)
        creator = creator_create(**data.validated_data)
        return Response(CreatorDetailOutput(creator).data, status=status.HTTP_201_CREATED)


class CreatorDetailView(APIView):
    @extend_schema(operation_id="creators_get", responses={200: CreatorDetailOutput, 404: NOT_FOUND})
    def get(self, request, handle: str):
        return Response(CreatorDetailOutput(creator_get(handle=handle)).data)


class OnboardingInput(serializers.Serializer):
    provider = StrictCharField(max_length=16, help_text="`sandbox` (instant) or `stripe` (Connect Express).")
    return_url = serializers.URLField(max_length=2000)


class CreatorOnboardingView(APIView):
    """Send the creator to `url` to set up their payout account at the provider; their
    `payout_status` becomes pending, then follows the provider (active or restricted)."""

    @extend_schema(
        operation_id="creators_onboarding",
        request=OnboardingInput,
        responses={
            201: inline_serializer("CreatorOnboarding", {"url": serializers.URLField()}),
            404: NOT_FOUND,
            409: OpenApiResponse(description="provider_not_configured / provider_not_supported"),
        },
    )
    @idempotent
    def post(self, request, handle: str):
        creator = creator_get(handle=handle)
        data = OnboardingInput(data=request.data)
        data.is_valid(raise_exception=True)
        url = creator_onboarding_start(creator=creator, **data.validated_data)
        return Response({"url": _absolute(request, url)}, status=status.HTTP_201_CREATED)


def tier_item() -> serializers.DictField:
    return serializers.DictField(help_text="A tier as `GET /api/v1/tiers` lists it.")


class CreatorTierInput(serializers.Serializer):
    code = StrictRegexField(
        r"^[a-z0-9][a-z0-9-]{0,19}$", help_text="Becomes the tier code `<handle>-<code>`."
    )
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")
    amount = AmountField(min_value=1, max_value=BIGINT_MAX)
    currency = StrictRegexField(r"^[a-z]{3}$")
    interval = serializers.ChoiceField(choices=["month", "year"], default="month")


class CreatorTiersView(APIView):
    @extend_schema(
        operation_id="creator_tiers_list",
        responses={
            200: page_schema("CreatorTierPage", serializers.ListField(child=tier_item())),
            404: NOT_FOUND,
        },
    )
    def get(self, request, handle: str):
        return single_page([tier_as_dict(t) for t in creator_tiers(creator=creator_get(handle=handle))])

    @extend_schema(
        operation_id="creator_tiers_create",
        request=CreatorTierInput,
        responses={
            201: inline_serializer("CreatorTier", {"code": serializers.CharField(), "tier": tier_item()}),
            404: NOT_FOUND,
            400: OpenApiResponse(description="invalid_tier / tier_exists"),
        },
    )
    @idempotent
    def post(self, request, handle: str):
        creator = creator_get(handle=handle)
        data = CreatorTierInput(data=request.data)
        data.is_valid(raise_exception=True)
        tier = creator_tier_create(creator=creator, **data.validated_data)
        [tier] = [t for t in creator_tiers(creator=creator) if t.pk == tier.pk]
        return Response({"code": tier.code, "tier": tier_as_dict(tier)}, status=status.HTTP_201_CREATED)


class CreatorTierDetailView(APIView):
    @extend_schema(
        operation_id="creator_tiers_delete",
        responses={
            204: None,
            404: OpenApiResponse(description="unknown_creator / unknown_tier"),
            409: OpenApiResponse(description="tier_in_use"),
        },
    )
    def delete(self, request, handle: str, code: str):
        creator_tier_delete(creator=creator_get(handle=handle), code=code)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTiersView(APIView):
    """A creator's published channel tiers, for anyone (no API key): what a channel page shows."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="channel_tiers_list",
        auth=[],
        responses={
            200: page_schema("ChannelTierPage", serializers.ListField(child=tier_item())),
            404: NOT_FOUND,
        },
    )
    def get(self, request, handle: str):
        return single_page([tier_as_dict(t) for t in creator_tiers(creator=creator_get(handle=handle))])


class TipCheckoutInput(serializers.Serializer):
    creator = StrictRegexField(HANDLE_PATTERN, max_length=40)
    customer = StrictRegexField(EXTERNAL_ID_PATTERN, max_length=255)
    amount = AmountField(min_value=1, max_value=BIGINT_MAX)
    currency = StrictRegexField(r"^[a-z]{3}$")
    item_id = StrictCharField(required=False, allow_blank=True, max_length=255, default="")
    provider = StrictCharField(
        required=False,
        max_length=16,
        help_text="`sandbox` or `stripe` (Checkout in payment mode); default: the tenant's.",
    )
    success_url = serializers.URLField(max_length=2000)
    cancel_url = serializers.URLField(max_length=2000)


class TipCheckoutOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    creator = serializers.CharField(source="creator.handle")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    item_id = serializers.CharField(allow_blank=True)
    provider = serializers.CharField()
    status = serializers.ChoiceField(choices=TipStatus.choices)

    def get_url(self, tip: Tip) -> str:
        request = self.context.get("request")
        return _absolute(request, tip.url) if request else tip.url


class TipCheckoutCreateView(APIView):
    """Start a tip's checkout; send the fan to `url`. Only the provider's paid order credits the
    creator (an earning, pending for the tenant's hold period)."""

    @extend_schema(
        operation_id="tips_checkouts_create",
        request=TipCheckoutInput,
        responses={
            201: TipCheckoutOutput,
            404: OpenApiResponse(description="unknown_creator / unknown_customer"),
            409: OpenApiResponse(description="provider_not_configured / provider_not_supported"),
            422: OpenApiResponse(description="tip_amount_out_of_range"),
        },
    )
    @idempotent
    def post(self, request):
        data = TipCheckoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        tip = tip_checkout_create(
            creator=creator_get(handle=values.pop("creator")),
            customer=customer_get(external_id=values.pop("customer")),
            **values,
        )
        return Response(
            TipCheckoutOutput(tip, context={"request": request}).data, status=status.HTTP_201_CREATED
        )
