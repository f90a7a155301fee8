"""Staff pages: `/creators/` (every creator with their payout state and what is owed to them) and
`/creators/payouts/` (every payout, by status). Both sort by their columns (?sort=) and page in the
database. Staff roles read them; payouts are requested by creators (their dashboard), integrators
(the API) or the tenant's schedule, not from here."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES
from console.creators.display import creator_table, payout_table
from console.creators.selectors import PAYOUT_STATUSES, creator_search, payout_search

PAGE_SIZE = 25


@require_GET
@role_required(*STAFF_ROLES)
def creator_list(request):
    q = request.GET.get("q", "")
    table = creator_table(request, creators=creator_search(q=q), per_page=PAGE_SIZE)
    return render(request, "console/creators/list.html", {"table": table, "q": q})


@require_GET
@role_required(*STAFF_ROLES)
def payout_list(request):
    status = request.GET.get("status", "")
    handle = request.GET.get("creator", "")
    table = payout_table(request, payouts=payout_search(status=status, handle=handle), per_page=PAGE_SIZE)
    return render(
        request,
        "console/creators/payouts.html",
        {"table": table, "status": status if status in PAYOUT_STATUSES else "", "statuses": PAYOUT_STATUSES,
         "creator": handle},
    )  # fmt: skip
