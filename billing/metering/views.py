"""Usage pages: the customer's charts sit on the plan page (see usage_charts); staff get /usage/."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES
from billing.metering.models import Meter
from billing.metering.selectors import current_period, month_start, top_customers, usage_series, usage_total
from kernel.charts import time_chart, usage_chart


def usage_charts(*, customer) -> list[dict]:
    """One chart per active meter: the customer's usage this billing period, by day."""
    start, end = current_period(customer=customer)
    end = min(end, timezone.now() + dt.timedelta(hours=1))
    charts = []
    for meter in Meter.objects.filter(active=True).order_by("code"):
        series = usage_series(meter=meter, start=start, end=end, window="day", customer=customer.external_id)
        charts.append(
            {
                "meter": meter,
                "total": usage_total(meter=meter, start=start, end=end, customer=customer.external_id),
                "chart": usage_chart(
                    chart_id=f"usage-{meter.code}", series=series, label=meter.name, unit=meter.unit
                ),
            }
        )
    return charts


@require_GET
@role_required(*STAFF_ROLES)
def tenant_usage(request):
    """The tenant's usage per meter: this month by day (or the last 48 hours by hour), top customers."""
    meters = list(Meter.objects.filter(active=True).order_by("code"))
    selected = next((m for m in meters if m.code == request.GET.get("meter")), meters[0] if meters else None)
    window = "hour" if request.GET.get("window") == "hour" else "day"
    now = timezone.now()
    start = now - dt.timedelta(hours=48) if window == "hour" else month_start(now)
    context = {"meters": meters, "selected": selected, "window": window, "start": start, "end": now}
    if selected is not None:
        series = usage_series(meter=selected, start=start, end=now, window=window)
        context.update(
            chart=usage_chart(
                chart_id=f"tenant-usage-{selected.code}",
                series=series,
                label=selected.name,
                unit=selected.unit,
                granularity=window,
            ),
            total=usage_total(meter=selected, start=start, end=now),
            top=top_customers(meter=selected, month=month_start(now)),
        )
    return render(request, "billing/usage.html", context)


@require_GET
@role_required(*STAFF_ROLES)
def tenant_ai_costs(request):
    """AI cost per model this month, and the customers it comes from (from the hourly AI rollup)."""
    from billing.metering.credit_selectors import ai_costs, ai_credits_by_day

    now = timezone.now()
    start = month_start(now)
    by_model = ai_costs(customer=None, start=start, end=now)
    by_customer = ai_costs(customer=None, start=start, end=now, by_customer=True)[:20]
    peak = max((float(row["credits"]) for row in by_model), default=0) or 1
    for row in by_model:
        row["share"] = round(100 * float(row["credits"]) / peak, 1)
    days, series = ai_credits_by_day(start=start, end=now)
    chart = time_chart(chart_id="ai-credits", points=days, series=series, unit="credit", stacked=True)
    return render(
        request,
        "billing/ai_costs.html",
        {"start": start, "by_model": by_model, "by_customer": by_customer, "chart": chart},
    )
