"""Pricing usage in credits: the burn-rate and AI-price histories, what one event costs, and the
hourly AI usage rollup ingestion keeps.

An event carrying `model`, `input_tokens`, `output_tokens` (and optionally `provider`) is priced
from the AI price row effective at its timestamp (without `provider`: the latest row for the model
among all providers) and is then not also charged by burn rates; any other event costs amount x
credits_per_unit for every count/sum meter it counts in that has a burn rate effective at its
timestamp. Costs are exact decimals of micro-credits (see credits.py for how they are burned).
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from billing.metering.credit_models import MICROS, AiPrice, BurnRate
from billing.metering.models import Aggregation

EXACT = decimal.Context(prec=60)
BURNABLE = (Aggregation.COUNT, Aggregation.SUM)


@dataclass
class Prices:
    """The burn-rate and AI-price histories, each sorted by effective_from."""

    burn: dict[int, tuple[list, list]] = field(default_factory=dict)  # meter id -> (times, rates)
    ai: dict[tuple[str, str], tuple[list, list]] = field(default_factory=dict)  # (provider, model)
    ai_any: dict[str, tuple[list, list]] = field(default_factory=dict)  # model, any provider

    @property
    def empty(self) -> bool:
        return not self.burn and not self.ai


def _history(rows) -> dict:
    grouped: dict = defaultdict(list)
    for key, when, value in rows:
        grouped[key].append((when, value))
    result = {}
    for key, items in grouped.items():
        items.sort(key=lambda item: item[0])
        result[key] = ([when for when, _ in items], [value for _, value in items])
    return result


def prices_load() -> Prices:
    burn = _history(BurnRate.objects.values_list("meter_id", "effective_from", "credits_per_unit"))
    ai_rows = list(
        AiPrice.objects.values_list("provider", "model", "effective_from", "input_per_1k", "output_per_1k")
    )
    ai = _history(((p, m), when, (i, o)) for p, m, when, i, o in ai_rows)
    ai_any = _history((m, when, (i, o)) for _, m, when, i, o in ai_rows)
    return Prices(burn=burn, ai=ai, ai_any=ai_any)


def _at(history: tuple[list, list] | None, when: dt.datetime):
    if history is None:
        return None
    index = bisect.bisect_right(history[0], when) - 1
    return history[1][index] if index >= 0 else None


def _tokens(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def ai_usage(properties: dict) -> tuple[str, str, int, int] | None:
    """(provider, model, input tokens, output tokens) of an AI event, else None."""
    model = properties.get("model")
    if (
        not isinstance(model, str)
        or not model
        or ("input_tokens" not in properties and "output_tokens" not in properties)
    ):
        return None
    tokens_in = _tokens(properties.get("input_tokens", 0))
    tokens_out = _tokens(properties.get("output_tokens", 0))
    if tokens_in is None or tokens_out is None:
        return None
    provider = properties.get("provider")
    return (provider if isinstance(provider, str) else ""), model, tokens_in, tokens_out


def ai_cost(prices: Prices, usage: tuple[str, str, int, int], when: dt.datetime) -> Decimal | None:
    """Exact micro-credits of an AI event at its timestamp; None when no price applies."""
    provider, model, tokens_in, tokens_out = usage
    price = _at(prices.ai.get((provider, model)) if provider else prices.ai_any.get(model), when)
    if price is None:
        return None
    per_in, per_out = price
    return EXACT.divide(EXACT.multiply(tokens_in * per_in + tokens_out * per_out, MICROS), 1000)


def event_cost(prices: Prices, row, contributions) -> tuple[Decimal, str] | None:
    """(exact micro-credits, source) of one event, or None when nothing prices it."""
    usage = ai_usage(row.properties) if prices.ai else None
    if usage is not None:
        cost = ai_cost(prices, usage, row.ts)
        if cost is not None:
            return cost, f"ai:{usage[0] or '*'}/{usage[1]}"
    total, sources = None, []
    for spec, amount in contributions:
        if spec.aggregation not in BURNABLE or isinstance(amount, str):
            continue
        rate = _at(prices.burn.get(spec.id), row.ts)
        if rate is None:
            continue
        cost = EXACT.multiply(EXACT.multiply(amount, rate), MICROS)
        total = cost if total is None else total + cost
        sources.append(spec.code)
    if total is None:
        return None
    return max(total, Decimal(0)), "meter:" + "+".join(sources)


def ai_usage_record(*, fresh: list, prices: Prices) -> None:
    """Add the newly stored AI events (with `model` and token counts) to the hourly AI usage rollup,
    priced as burning prices them. Runs inside the ingestion transaction (new events only)."""
    from billing.metering.credit_models import AiUsage

    totals: dict[tuple, list] = {}
    for row, _ in fresh:
        usage = ai_usage(row.properties)
        if usage is None:
            continue
        cost = ai_cost(prices, usage, row.ts) if prices.ai else None
        key = (row.customer, usage[0], usage[1], row.ts.replace(minute=0, second=0, microsecond=0))
        acc = totals.setdefault(key, [0, 0, 0, Decimal(0), 0])
        acc[0] += 1
        acc[1] += usage[2]
        acc[2] += usage[3]
        if cost is None:
            acc[4] += 1
        else:
            acc[3] += cost
    if not totals:
        return
    keys = sorted(totals)  # key order: concurrent batches lock the same rows in the same order
    columns = list(zip(*[(*key, *totals[key]) for key in keys], strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {AiUsage._meta.db_table}
                (customer, provider, model, hour, events, input_tokens, output_tokens, credits, unpriced_events)
            SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[],
                                 %s::bigint[], %s::numeric[], %s::bigint[])
            ON CONFLICT (customer, provider, model, hour) DO UPDATE SET
                events = {AiUsage._meta.db_table}.events + EXCLUDED.events,
                input_tokens = {AiUsage._meta.db_table}.input_tokens + EXCLUDED.input_tokens,
                output_tokens = {AiUsage._meta.db_table}.output_tokens + EXCLUDED.output_tokens,
                credits = {AiUsage._meta.db_table}.credits + EXCLUDED.credits,
                unpriced_events = {AiUsage._meta.db_table}.unpriced_events + EXCLUDED.unpriced_events
            """,
            [list(column) for column in columns],
        )
