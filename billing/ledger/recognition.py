"""Revenue recognition (ASC 606 style): what an invoice credited to `deferred_revenue` becomes
`revenue` as its service is delivered.

What is recognized: every line of a finalized invoice, paid or not. ASC 606 (and Stripe's revenue
recognition) recognize invoiced amounts as the service is delivered; collectibility is judged when the
invoice is issued, and an invoice given up on later is a bad-debt expense (billing.ledger.corrections),
not a reversal of revenue. So "paid invoice line" reads here as "invoiced line": a customer who
never pays still received the service.

How much per line: the invoice's deferred amount (total less tax, exactly what its posting credited
to `deferred_revenue`) is spread over its lines in proportion to their amounts after discount
(largest remainder: the shares add up to the minor unit; a line whose amount after discount is zero
or negative -- a proration credit -- takes no share and lowers the others'). An invoice whose lines
give no weight (mirrored without lines) gets one schedule over the invoice's period.

When: a line with a service period is recognized straight-line over [period_start, period_end),
cumulatively: through a cutoff, `base + floor((amount - base) * elapsed / length)` of it, measured
from `basis_start` (the period's start, or where a credit note re-spread the remainder), and all of it
once the period is over -- so the days add up exactly to the amount, in any currency, and a run that
was missed is caught up by the next. A line without a period (a one-off charge) is recognized at
finalization. Days are UTC days; day D's run recognizes through D+1 00:00 UTC and posts one
transaction `recognition:<D>` dated the last microsecond of D (one per day for every line and
currency: the per-line detail stays in RecognitionSchedule).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from billing.invoicing.models import Invoice, InvoiceLine
from billing.ledger.models import JournalTransaction, RecognitionRun, RecognitionSchedule
from billing.ledger.services import Posting, ledger_post_many

RECOGNITION_SOURCE = "recognition"
CATCH_UP_DAYS_MAX = 3 * 366


def allocate(target: int, weights: list[int]) -> list[int]:
    """Split `target` ≥ 0 over non-negative weights in proportion (largest remainder, ties to the
    first); the shares add up to `target` exactly (all to the first weight when none is positive)."""
    total = sum(weights)
    if not weights:
        return []
    if total <= 0:
        return [target] + [0] * (len(weights) - 1)
    shares = [target * w // total for w in weights]
    left = target - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-(target * weights[i] % total), i))[:left]:
        shares[i] += 1
    return shares


def deferred_amount(invoice: Invoice) -> int:
    """What the invoice's finalization credited to deferred revenue (see postings.invoice_posting)."""
    if invoice.total <= 0:
        return 0
    return invoice.total - min(max(invoice.tax, 0), invoice.total)


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


def _cutoff(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


def recognition_schedules_create(*, invoices: list[Invoice]) -> list[Posting]:
    """The schedules of finalized invoices (an invoice scheduled already is left as it is), and the
    postings that recognize their one-off lines now (the caller posts them with the invoices')."""
    invoices = [i for i in invoices if deferred_amount(i) > 0]
    if not invoices:
        return []
    done = set(
        RecognitionSchedule.objects.filter(invoice__in=[i.pk for i in invoices])
        .values_list("invoice_id", flat=True)
        .distinct()
    )
    invoices = [i for i in invoices if i.pk not in done]
    lines_of: dict[int, list] = defaultdict(list)
    for line in InvoiceLine.objects.filter(invoice__in=[i.pk for i in invoices]).order_by("id"):
        lines_of[line.invoice_id].append(line)
    rows, postings = [], []
    for invoice in invoices:
        at = invoice.finalized_at or timezone.now()
        lines = lines_of.get(invoice.pk, [])
        weights = [max(line.amount - line.discount_amount, 0) for line in lines]
        if not lines or sum(weights) <= 0:
            parts = [(None, deferred_amount(invoice), invoice.period_start, invoice.period_end)]
        else:
            shares = allocate(deferred_amount(invoice), weights)
            parts = [
                (line, share, line.period_start, line.period_end)
                for line, share in zip(lines, shares, strict=True)
            ]
        now_recognized = 0
        for line, share, start, end in parts:
            one_off = start is None or end is None or end <= start
            rows.append(
                RecognitionSchedule(
                    invoice=invoice, line=line, currency=invoice.currency.lower(), amount=share,
                    recognized=share if one_off else 0, base=share if one_off else 0,
                    basis_start=at if one_off else start, period_end=at if one_off else end,
                    recognized_through=at if one_off else None,
                )
            )  # fmt: skip
            if one_off:
                now_recognized += share
        if now_recognized:
            currency = invoice.currency.lower()
            postings.append(
                Posting(
                    source=RECOGNITION_SOURCE, source_id=f"invoice-{invoice.pk}", occurred_at=at,
                    description=f"Invoice {invoice.number}: one-off lines recognized at finalization",
                    entries=[("deferred_revenue", currency, now_recognized), ("revenue", currency, -now_recognized)],
                    metadata={"invoice": invoice.pk, "number": invoice.number},
                )
            )  # fmt: skip
    RecognitionSchedule.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return postings


_RUN_SQL = """
WITH due AS (
    SELECT id, recognized AS old FROM ledger_recognitionschedule
    WHERE recognized < amount AND basis_start < %(cutoff)s
    ORDER BY id FOR UPDATE
), moved AS (
    UPDATE ledger_recognitionschedule s SET
        recognized = GREATEST(due.old, CASE WHEN s.period_end <= %(cutoff)s THEN s.amount ELSE
            s.base + floor((s.amount - s.base)::numeric
                * extract(epoch FROM (%(cutoff)s - s.basis_start))
                / extract(epoch FROM (s.period_end - s.basis_start)))::bigint END),
        recognized_through = %(cutoff)s
    FROM due WHERE s.id = due.id
    RETURNING s.currency, s.recognized - due.old AS delta
)
SELECT currency, COALESCE(SUM(delta), 0)::bigint, COUNT(*) FROM moved GROUP BY currency ORDER BY currency
"""


def recognition_run(*, day: dt.date) -> RecognitionRun:
    """Recognize what was delivered through the end of `day` (UTC) and not recognized yet, in one
    posting `recognition:<day>`, once: a re-run, or a concurrent run of the same day, returns the
    first run and posts nothing (the run's row is claimed first, under its unique day)."""
    with transaction.atomic():
        try:
            with transaction.atomic():  # a concurrent run of the same day waits here, then loses
                run = RecognitionRun.objects.create(day=day)
        except IntegrityError:
            return RecognitionRun.objects.get(day=day)
        with connection.cursor() as cursor:
            cursor.execute(_RUN_SQL, {"cutoff": _cutoff(day)})
            moved = cursor.fetchall()
        entries = []
        for currency, delta, _ in moved:
            if delta:
                entries += [("deferred_revenue", currency, int(delta)), ("revenue", currency, -int(delta))]
        run.lines = sum(count for _, _, count in moved)
        if entries:
            posting = Posting(
                source=RECOGNITION_SOURCE, source_id=day.isoformat(), occurred_at=_day_end(day),
                description=f"Revenue recognized on {day.isoformat()}", entries=entries,
                metadata={"day": day.isoformat(), "lines": run.lines},
            )  # fmt: skip
            run.transaction = ledger_post_many([posting])[0]
        run.save(update_fields=["lines", "transaction"])
    return run


def recognition_days_due(*, today: dt.date) -> list[dt.date]:
    """The days to recognize before `today` (complete UTC days): from the day after the last run
    (or the first day an open schedule started) through yesterday, at most CATCH_UP_DAYS_MAX."""
    yesterday = today - dt.timedelta(days=1)
    last = RecognitionRun.objects.aggregate(last=Max("day"))["last"]
    if last is not None:
        first = last + dt.timedelta(days=1)
    else:
        start = RecognitionSchedule.objects.filter(recognized__lt=F("amount")).aggregate(
            first=Min("basis_start")
        )["first"]
        if start is None:
            return []
        first = start.astimezone(dt.UTC).date()
    first = max(first, yesterday - dt.timedelta(days=CATCH_UP_DAYS_MAX - 1))
    return [first + dt.timedelta(days=n) for n in range((yesterday - first).days + 1)]


def recognition_run_due(*, today: dt.date | None = None) -> int:
    """Run every day due (the beat job, in each tenant); returns how many days ran."""
    days = recognition_days_due(today=today or timezone.now().astimezone(dt.UTC).date())
    for day in days:
        recognition_run(day=day)
    return len(days)


def recognition_unrecognized(*, invoice_id: int) -> int:
    """What is still deferred on an invoice's schedules."""
    return sum(s.amount - s.recognized for s in RecognitionSchedule.objects.filter(invoice_id=invoice_id))


def recognition_take_back(*, invoice_id: int, amount: int) -> int:
    """Take up to `amount` off what an invoice still has to recognize (a credit note): spread over its
    schedules in proportion to what each has left, each re-spreading its remainder from where it was
    recognized through. Returns what was taken (at most the unrecognized remainder: the invoice's
    deferred balance never goes negative)."""
    schedules = list(
        RecognitionSchedule.objects.select_for_update().filter(invoice_id=invoice_id).order_by("id")
    )
    left = [s.amount - s.recognized for s in schedules]
    taken = min(max(amount, 0), sum(left))
    if taken <= 0:
        return 0
    for schedule, share in zip(schedules, allocate(taken, left), strict=True):
        if not share:
            continue
        schedule.amount -= share
        if schedule.recognized_through is not None and schedule.recognized_through > schedule.basis_start:
            schedule.basis_start = min(schedule.recognized_through, schedule.period_end)
        schedule.base = schedule.recognized
    RecognitionSchedule.objects.bulk_update(schedules, ["amount", "basis_start", "base"])
    return taken


def recognition_stop(*, invoice_id: int) -> int:
    """A voided invoice recognizes nothing more: its schedules end where they are; returns what they
    had recognized (the caller takes it back out of revenue)."""
    schedules = list(
        RecognitionSchedule.objects.select_for_update().filter(invoice_id=invoice_id).order_by("id")
    )
    for schedule in schedules:
        schedule.amount = schedule.recognized
    RecognitionSchedule.objects.bulk_update(schedules, ["amount"])
    return sum(s.recognized for s in schedules)


def recognition_posted(*, day: dt.date) -> JournalTransaction | None:
    return JournalTransaction.objects.filter(source=RECOGNITION_SOURCE, source_id=day.isoformat()).first()
