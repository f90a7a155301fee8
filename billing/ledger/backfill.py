"""Post what happened before the ledger existed (or while a posting was missed): every finalized
invoice (with its revenue recognition schedules) and every recorded payment, under the same (source, source_id) as the live postings, so a
re-run, or a live posting racing it, posts nothing twice. A void invoice is left out (it billed
nothing in the end)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from billing.invoicing.models import Invoice, InvoiceStatus
from billing.ledger.models import JournalTransaction
from billing.ledger.postings import invoice_posting, payment_posting
from billing.ledger.recognition import recognition_schedules_create
from billing.ledger.services import ledger_post_many
from billing.memberships.models import Payment


def ledger_backfill(*, batch: int = 1000, progress: Callable[[str], None] | None = None) -> int:
    """Post the invoices and payments not posted yet, `batch` per transaction, oldest first;
    returns how many transactions it posted."""
    posted = 0
    invoices = (
        Invoice.objects.exclude(status__in=(InvoiceStatus.DRAFT, InvoiceStatus.VOID))
        .filter(total__gt=0)
        .select_related("customer")
    )
    payments = Payment.objects.select_related("customer")
    for label, queryset, build in (
        ("invoices", invoices, invoice_posting),
        ("payments", payments, payment_posting),
    ):
        last = 0
        while True:
            rows = list(queryset.filter(pk__gt=last).order_by("pk")[:batch])
            if not rows:
                break
            last = rows[-1].pk
            with transaction.atomic():  # a batch's schedules and postings together
                postings = [p for row in rows if (p := build(row)) is not None]
                if label == "invoices":  # their recognition schedules, and their one-off lines recognized
                    postings += recognition_schedules_create(invoices=rows)
                done = set(
                    JournalTransaction.objects.filter(
                        source__in={p.source for p in postings}, source_id__in=[p.source_id for p in postings]
                    ).values_list("source", "source_id")
                )
                fresh = [p for p in postings if (p.source, p.source_id) not in done]
                ledger_post_many(fresh)
            posted += len(fresh)
            if progress:
                progress(f"{label}: up to id {last}")
    return posted
