"""The tenant's credit price tables (burn rates, AI prices, with history), feature requirements and
low-balance alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.metering.credit_models import (
    AiPrice,
    BurnRate,
    CreditAlert,
    CreditRequirement,
)
from billing.metering.credit_pricing import BURNABLE
from billing.metering.credits.burn import InvalidCredits
from billing.metering.exceptions import UnknownMeter
from billing.metering.models import Meter
from billing.metering.signals import snapshots_stale


def burn_rate_create(
    *, meter_code: str, credits_per_unit: Decimal, effective_from: dt.datetime | None = None
) -> BurnRate:
    """A new burn rate for a count/sum meter from `effective_from` (default now); history is kept."""
    meter = Meter.objects.filter(code=meter_code).first()
    if meter is None:
        raise UnknownMeter(f"No meter '{meter_code}'.", details={"meter": meter_code})
    if meter.aggregation not in BURNABLE:
        raise InvalidCredits("Burn rates apply to count and sum meters.", details={"field": "meter"})
    if credits_per_unit < 0:
        raise InvalidCredits("'credits_per_unit' cannot be negative.", details={"field": "credits_per_unit"})
    try:
        with transaction.atomic():
            return BurnRate.objects.create(
                meter=meter,
                credits_per_unit=credits_per_unit,
                effective_from=effective_from or timezone.now(),
            )
    except IntegrityError:
        raise InvalidCredits(
            "A rate for this meter starts at that time already.",
            code="rate_exists",
            details={"meter": meter_code},
        ) from None


def ai_price_create(
    *,
    provider: str,
    model: str,
    input_per_1k: Decimal,
    output_per_1k: Decimal,
    effective_from: dt.datetime | None = None,
) -> AiPrice:
    """A new price of a provider's model from `effective_from` (default now); history is kept."""
    if input_per_1k < 0 or output_per_1k < 0:
        raise InvalidCredits("Prices cannot be negative.", details={"field": "input_per_1k"})
    try:
        with transaction.atomic():
            return AiPrice.objects.create(
                provider=provider, model=model, input_per_1k=input_per_1k, output_per_1k=output_per_1k,
                effective_from=effective_from or timezone.now(),
            )  # fmt: skip
    except IntegrityError:
        raise InvalidCredits(
            "A price for this model starts at that time already.",
            code="price_exists",
            details={"model": model},
        ) from None


def credit_requirement_set(*, feature_code: str, minimum: int) -> CreditRequirement:
    """Make a feature require at least `minimum` micro-credits (every snapshot is rebuilt)."""
    from billing.tiers.models import Feature

    feature = Feature.objects.filter(code=feature_code).first()
    if feature is None:
        raise InvalidCredits(f"No feature '{feature_code}'.", details={"field": "feature"})
    with transaction.atomic():
        requirement, _ = CreditRequirement.objects.update_or_create(
            feature=feature, defaults={"minimum": minimum}
        )
        snapshots_stale.send(sender=CreditRequirement, customers=None)  # now and on commit
    return requirement


def credit_alert_create(*, threshold: int) -> CreditAlert:
    alert, _ = CreditAlert.objects.get_or_create(threshold=threshold)
    return alert
