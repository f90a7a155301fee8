"""Staff pages: `/creators/` (every creator with their payout state and what is owed to them) and
`/creators/payouts/` (every payout, by status). Staff roles read them; payouts are requested by
creators (their dashboard), integrators (the API) or the tenant's schedule, not from here."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES
from console.creators.selectors import PAYOUT_STATUSES, balances_for, creator_search, payout_search

PAGE_SIZE = 25


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@require_GET
@role_required(*STAFF_ROLES)
def creator_list(request):
    q = request.GET.get("q", "")
    page = _page(request, creator_search(q=q))
    balances = balances_for(list(page.object_list))
    rows = [(creator, balances.get(creator.pk, [])) for creator in page.object_list]
    return render(request, "console/creators/list.html", {"page": page, "rows": rows, "q": q})


@require_GET
@role_required(*STAFF_ROLES)
def payout_list(request):
    status = request.GET.get("status", "")
    handle = request.GET.get("creator", "")
    page = _page(request, payout_search(status=status, handle=handle))
    return render(
        request,
        "console/creators/payouts.html",
        {"page": page, "status": status if status in PAYOUT_STATUSES else "", "statuses": PAYOUT_STATUSES,
         "creator": handle},
    )  # fmt: skip
