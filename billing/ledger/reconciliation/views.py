"""Reconciliation pages for staff: `/reconciliation/` (runs, newest day first, the latest run's
differences per provider, filter by provider and status, pages of 25) and `/reconciliation/<id>/`
(the run's figures and each difference; the roles that change billing may compare the day again)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES, Role
from billing.ledger.reconciliation.exceptions import ReconciliationQueryInvalid, RunNotFound
from billing.ledger.reconciliation.models import ItemKind, RunStatus
from billing.ledger.reconciliation.selectors import (
    reconciliation_item_counts,
    reconciliation_items,
    reconciliation_run_get,
    reconciliation_run_list,
    reconciliation_summary,
)
from billing.ledger.reconciliation.services import reconciliation_run

BILLING_ROLES = (Role.OWNER, Role.ADMIN, Role.FINANCE)
PAGE_SIZE = 25


@require_GET
@role_required(*STAFF_ROLES)
def run_list(request):
    provider = request.GET.get("provider") or None
    status = request.GET.get("status") or None
    try:
        runs = reconciliation_run_list(provider=provider, status=status)
    except ReconciliationQueryInvalid:
        status, runs = None, reconciliation_run_list(provider=provider)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "billing/reconciliation/list.html",
        {
            "page": Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page")),
            "summary": reconciliation_summary(),
            "statuses": RunStatus.choices,
            "provider": provider or "",
            "status": status or "",
            "filtered": bool(provider or status),
            "query": query.urlencode(),
        },
    )


def _run(run_id: int):
    try:
        return reconciliation_run_get(run_id=run_id)
    except RunNotFound:
        raise Http404("No such reconciliation run.") from None


@require_GET
@role_required(*STAFF_ROLES)
def run_detail(request, run_id: int):
    run = _run(run_id)
    kind = request.GET.get("kind") or None
    if kind not in ItemKind.values:
        kind = None
    user = request.user
    return render(
        request,
        "billing/reconciliation/detail.html",
        {
            "run": run,
            "kind": kind or "",
            "query": f"kind={kind}" if kind else "",
            "kinds": [(value, label, n) for (value, label), n in zip(ItemKind.choices, reconciliation_item_counts(run=run).values(), strict=True)],
            "items": Paginator(reconciliation_items(run=run, kind=kind), 100).get_page(request.GET.get("page")),
            "may_rerun": user.is_superuser or user.role in BILLING_ROLES,
        },
    )  # fmt: skip


@require_POST
@role_required(*BILLING_ROLES)
def run_again(request, run_id: int):
    run = _run(run_id)
    run = reconciliation_run(provider=run.provider, day=run.day, force=True)
    if run.status == RunStatus.BALANCED:
        messages.success(request, f"Compared again: {run.provider} on {run.day} balances.")
    elif run.status == RunStatus.DIFFERENCES:
        messages.warning(request, f"Compared again: {run.difference_count} unexplained difference(s) remain.")
    else:
        messages.error(request, f"Not compared: {(run.error or run.get_status_display()).rstrip('.')}.")
    return redirect("staff-reconciliation-run", run_id=run.pk)
