"""Reads of reconciliation runs and their differences (the API and the staff pages)."""

from __future__ import annotations

from django.db.models import Count, QuerySet, Sum

from billing.ledger.reconciliation.exceptions import ReconciliationQueryInvalid, RunNotFound
from billing.ledger.reconciliation.models import ItemKind, ReconciliationItem, ReconciliationRun, RunStatus

MAX_ID = 2**63 - 1


def reconciliation_run_list(*, provider: str | None = None, status: str | None = None) -> QuerySet:
    """Runs, newest day first, filtered by provider and status (an unknown status is refused)."""
    if status and status not in RunStatus.values:
        raise ReconciliationQueryInvalid(
            f"No run status '{status}'.", details={"field": "status", "allowed": list(RunStatus.values)}
        )
    runs = ReconciliationRun.objects.all()
    if provider:
        runs = runs.filter(provider=provider)
    if status:
        runs = runs.filter(status=status)
    return runs


def reconciliation_run_get(*, run_id: int) -> ReconciliationRun:
    run = ReconciliationRun.objects.filter(pk=run_id).first() if 0 < run_id <= MAX_ID else None
    if run is None:
        raise RunNotFound(f"No reconciliation run {run_id}.", details={"run": run_id})
    return run


def reconciliation_items(*, run: ReconciliationRun, kind: str | None = None) -> QuerySet:
    if kind and kind not in ItemKind.values:
        raise ReconciliationQueryInvalid(
            f"No difference kind '{kind}'.", details={"field": "kind", "allowed": list(ItemKind.values)}
        )
    items = ReconciliationItem.objects.filter(run=run)
    return items.filter(kind=kind) if kind else items


def reconciliation_item_counts(*, run: ReconciliationRun) -> dict[str, int]:
    """The run's differences per kind (every kind, zeros included)."""
    counts = dict(run.items.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    return {kind: counts.get(kind, 0) for kind in ItemKind.values}


def reconciliation_summary() -> dict:
    """Figures for the staff list: runs, and the differences the latest run of each provider found."""
    latest = {}
    for run in ReconciliationRun.objects.exclude(status=RunStatus.RUNNING).order_by(
        "provider", "-day", "-id"
    ):
        latest.setdefault(run.provider, run)
    return {
        "runs": ReconciliationRun.objects.count(),
        "latest": sorted(latest.values(), key=lambda run: run.provider),
        "open_differences": sum(run.difference_count for run in latest.values()),
        "providers": sorted(
            ReconciliationRun.objects.values_list("provider", flat=True).distinct().order_by("provider")
        ),
        "total_differences": ReconciliationRun.objects.aggregate(n=Sum("difference_count"))["n"] or 0,
    }
