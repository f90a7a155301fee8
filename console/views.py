"""Staff pages of the console: the overview (`/dashboard/`), the home of owners, admins, finance
and support. Other roles keep their own dashboard (accounts)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import STAFF_ROLES
from accounts.views import dashboard as account_dashboard
from console.exceptions import ReportRangeInvalid
from console.overview.display import overview_attention, overview_charts
from console.overview.range import PRESETS, range_parse, range_preset
from console.overview.selectors import overview_get


def _period(params):
    """The range the page was asked for (a preset, or custom from/to), and an error to show when
    it cannot be read (the page then shows the last 30 days)."""
    preset = params.get("range") or ("custom" if params.get("from") or params.get("to") else "30d")
    try:
        if preset == "custom":
            return preset, range_parse(start=params.get("from"), end=params.get("to")), None
        return preset, range_preset(preset), None
    except ReportRangeInvalid as exc:
        return "30d", range_preset("30d"), exc.message


@require_GET
@login_required
def overview(request):
    user = request.user
    if not (user.is_superuser or user.role in STAFF_ROLES):
        return account_dashboard(request)
    preset, period, error = _period(request.GET)
    figures = overview_get(period=period, fresh=request.GET.get("fresh") == "1")
    return render(
        request,
        "console/overview.html",
        {
            "figures": figures,
            "charts": overview_charts(figures),
            "attention": overview_attention(figures),
            "anything": any(
                figures["subscriptions"][s]
                for s in ("active", "trialing", "past_due", "paused", "new", "churned")
            ),
            "period": period,
            "preset": preset,
            "presets": PRESETS,
            "range_error": error,
        },
    )
