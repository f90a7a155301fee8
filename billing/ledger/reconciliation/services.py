"""Reconciliation runs: the ledger compared with each provider's own books, once per (provider,
UTC day). The run's row is locked while it runs, so the daily job, the command and a retry never
run the same day twice at once, and a finished run is answered as it is (a forced re-run replaces
its items). A provider that does not answer leaves the run `failed` (the next daily job tries
it again); one that offers no books leaves it `unsupported`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.ledger.models import JournalEntry
from billing.ledger.postings import PAYMENT_SOURCE
from billing.ledger.reconciliation.compare import MARGIN, Movement, compare
from billing.ledger.reconciliation.models import ReconciliationItem, ReconciliationRun, RunStatus
from billing.memberships.models import Payment, PaymentKind
from billing.providers.base import ProviderError, ProviderNotSupported
from billing.providers.registry import provider_for
from billing.providers.selectors import provider_accounts_per_provider
from kernel.metrics import RECONCILIATION_DIFFERENCES

logger = logging.getLogger(__name__)
FINISHED = (RunStatus.BALANCED, RunStatus.DIFFERENCES, RunStatus.UNSUPPORTED)
_KINDS = {PaymentKind.CHARGE: "charge", PaymentKind.REFUND: "refund"}


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _movements(*, provider: str, since: dt.datetime, until: dt.datetime, refs: set[str]) -> list[Movement]:
    """Our charges and refunds at `provider` that occurred in [since, until) or that the provider's
    entries name (whatever their date), with what the ledger moved on cash:<provider> for each."""
    payments = list(
        Payment.objects.filter(provider=provider, kind__in=list(_KINDS), amount__gt=0)
        .filter(
            Q(occurred_at__gte=since, occurred_at__lt=until)
            | Q(provider_payment_id__in=refs)
            | Q(kind=PaymentKind.CHARGE, reference__in=refs)
        )
        .order_by("id")
    )
    ledger = {
        row["transaction__source_id"]: row["total"]
        for row in JournalEntry.objects.filter(
            transaction__source=PAYMENT_SOURCE,
            transaction__source_id__in=[str(p.pk) for p in payments],
            account__code=f"cash:{provider}",
        )
        .values("transaction__source_id")
        .annotate(total=Sum("amount"))
    }
    movements = []
    for payment in payments:
        kind = _KINDS[payment.kind]
        refs_of = (
            (payment.provider_payment_id, payment.reference)
            if kind == "charge"
            else (payment.provider_payment_id,)
        )
        movements.append(
            Movement(
                payment_id=payment.pk, kind=kind, refs=tuple(r for r in refs_of if r),
                amount=payment.amount if kind == "charge" else -payment.amount,
                fee=payment.fee_amount if kind == "charge" else 0, currency=payment.currency.lower(),
                occurred_at=payment.occurred_at, ledger=ledger.get(str(payment.pk)),
            )
        )  # fmt: skip
    return movements


def _run_row(*, provider: str, day: dt.date) -> ReconciliationRun:
    start, end = day_window(day)
    try:
        with transaction.atomic():
            run, _ = ReconciliationRun.objects.get_or_create(
                provider=provider, day=day, defaults={"window_start": start, "window_end": end}
            )
    except IntegrityError:  # created concurrently: theirs
        run = ReconciliationRun.objects.get(provider=provider, day=day)
    return run


def reconciliation_run(
    *, provider: str, day: dt.date, force: bool = False, progress: Callable[[str], None] | None = None
) -> ReconciliationRun:
    """Compare `provider`'s books of `day` (UTC) with our payments and ledger, once: the stored run
    when it finished already (unless `force`), else a fresh comparison stored with its items."""
    say = progress or (lambda line: None)
    run = _run_row(provider=provider, day=day)
    with transaction.atomic():
        run = ReconciliationRun.objects.select_for_update().get(pk=run.pk)
        if run.status in FINISHED and not force:
            say(f"{provider} {day}: already reconciled ({run.get_status_display().lower()})")
            return run
        run.status, run.error, run.started_at = RunStatus.RUNNING, "", timezone.now()
        accounts = [a for a in provider_accounts_per_provider() if a.provider == provider]
        adapter = provider_for(accounts[0]) if accounts else None
        fetch = getattr(adapter, "balance_transactions", None)
        since, until = run.window_start, run.window_end
        try:
            if adapter is None:
                raise ProviderNotSupported(f"No {provider} account is configured for this tenant.")
            if fetch is None:
                raise ProviderNotSupported(f"{provider} offers no books to reconcile with.")
            say(f"{provider} {day}: reading the provider's books")
            theirs = fetch(since=since - MARGIN, until=until + MARGIN)
        except ProviderNotSupported as exc:
            return _finish(run, status=RunStatus.UNSUPPORTED, error=str(exc), say=say)
        except ProviderError as exc:
            logger.warning("reconciliation %s %s failed: %s", provider, day, exc)
            return _finish(run, status=RunStatus.FAILED, error=str(exc), say=say)
        say(f"{provider} {day}: {len(theirs)} provider entries around the day; reading ours")
        ours = _movements(
            provider=provider,
            since=since,
            until=until,
            refs={ref for e in theirs for ref in (e.source, *e.related) if ref},
        )
        outcome = compare(theirs=theirs, ours=ours, since=since, until=until)
        run.items.all().delete()
        ReconciliationItem.objects.bulk_create(
            [ReconciliationItem(run=run, **vars(difference)) for difference in outcome.differences]
        )
        run.provider_count, run.ledger_count = outcome.provider_count, outcome.ledger_count
        run.matched_count, run.difference_count = outcome.matched_count, len(outcome.differences)
        status = RunStatus.DIFFERENCES if outcome.differences else RunStatus.BALANCED
        return _finish(run, status=status, say=say)


def _finish(run: ReconciliationRun, *, status: str, say, error: str = "") -> ReconciliationRun:
    run.status, run.error, run.finished_at = status, error[:500], timezone.now()
    run.save()
    if status in (RunStatus.BALANCED, RunStatus.DIFFERENCES):
        tenant = getattr(connection.tenant, "slug", "") or connection.schema_name
        RECONCILIATION_DIFFERENCES.labels(tenant=tenant, provider=run.provider).set(run.difference_count)
    say(
        f"{run.provider} {run.day}: {run.get_status_display().lower()} -- {run.provider_count} at the provider, "
        f"{run.ledger_count} ours, {run.matched_count} matched, {run.difference_count} difference(s)"
        + (f" ({run.error})" if run.error else "")
    )
    return run


def reconciliation_daily(
    *, today: dt.date | None = None, progress: Callable[[str], None] | None = None
) -> list[ReconciliationRun]:
    """The daily job: yesterday (UTC) for every configured provider, and any of the last week's runs
    that failed (the provider did not answer then)."""
    today = today or timezone.now().date()
    yesterday = today - dt.timedelta(days=1)
    days = {(account.provider, yesterday) for account in provider_accounts_per_provider()}
    days |= set(
        ReconciliationRun.objects.filter(
            status__in=[RunStatus.FAILED, RunStatus.RUNNING],
            day__gte=today - dt.timedelta(days=7),
            day__lt=today,
        ).values_list("provider", "day")
    )
    return [
        reconciliation_run(provider=provider, day=day, progress=progress) for provider, day in sorted(days)
    ]
