"""Revenue recognition (issue 12 item 2): each finalized invoice line recognized over its service
period, daily, exactly to the minor unit; one posting per day, once (re-run, concurrent run); credit
notes take back the unrecognized part first; a voided invoice nets to zero; a write-off leaves
recognition alone."""

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.db.models import Sum
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
from billing.ledger.models import JournalEntry, JournalTransaction, RecognitionRun, RecognitionSchedule
from billing.ledger.recognition import allocate, recognition_days_due, recognition_run, recognition_run_due
from billing.ledger.selectors import ledger_balance
from billing.memberships.services import customer_upsert
from tests.helpers import committed, run_parallel

D0 = dt.date(2026, 1, 1)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def invoice_of(*lines, currency="usd", customer="ada"):
    """lines: (amount, start day offset or None, length in days)."""
    buyer, _ = customer_upsert(external_id=customer)
    draft, _ = invoice_draft_create(
        customer=buyer,
        currency=currency,
        lines=[
            LineDraft(
                kind="fee",
                description=f"Line {i}",
                amount=amount,
                period_start=None if start is None else at(start),
                period_end=None if start is None else at(start + length),
            )  # fmt: skip
            for i, (amount, start, length) in enumerate(lines)
        ],
    )
    return invoice_finalize(invoice_id=draft.pk)


def revenue(currency="usd") -> int:
    return -ledger_balance(account="revenue", currency=currency)


def deferred(currency="usd") -> int:
    return -ledger_balance(account="deferred_revenue", currency=currency)


def run_days(first: int, last: int) -> None:
    for n in range(first, last + 1):
        recognition_run(day=D0 + dt.timedelta(days=n))


def check_constraints():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_allocate_adds_up_exactly():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [0, 0]) == [10, 0]
    assert allocate(7, [3, 0, 4]) == [3, 0, 4]
    assert allocate(0, [5, 5]) == [0, 0]


def test_a_monthly_line_is_recognized_day_by_day_and_a_one_off_at_finalization(in_alpha):
    # given a 30-day line of 100.00 and a one-off setup fee of 25.00
    invoice = invoice_of((10_000, 0, 30), (2_500, None, 0))
    assert deferred() == 10_000 and revenue() == 2_500  # the one-off is recognized at once
    one_off = JournalTransaction.objects.get(source="recognition", source_id=f"invoice-{invoice.pk}")
    assert one_off.occurred_at == invoice.finalized_at

    # when the first day runs: 1/30 of it
    first = recognition_run(day=D0)
    assert first.transaction.source_id == "2026-01-01" and first.lines == 1
    assert revenue() == 2_500 + 10_000 // 30
    assert first.transaction.occurred_at == dt.datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)

    # then every day to the end: exactly the line's amount, deferred at zero, each day 333 or 334
    run_days(1, 35)
    assert revenue() == 12_500 and deferred() == 0
    daily = [
        e.amount
        for e in JournalEntry.objects.filter(
            account__code="deferred_revenue", transaction__source="recognition"
        ).exclude(transaction__source_id__startswith="invoice-")
    ]
    assert len(daily) == 30 and sum(daily) == 10_000 and set(daily) <= {333, 334}
    assert RecognitionRun.objects.count() == 36  # the days with nothing due ran too (no posting)
    check_constraints()


def test_a_rerun_posts_nothing_and_a_missed_day_is_caught_up(in_alpha):
    invoice_of((3_000, 0, 3))
    run = recognition_run(day=D0)
    again = recognition_run(day=D0)
    assert again.pk == run.pk and JournalTransaction.objects.filter(source_id="2026-01-01").count() == 1
    assert revenue() == 1_000
    # day 2 was missed: day 3's run recognizes both
    recognition_run(day=D0 + dt.timedelta(days=2))
    assert revenue() == 3_000 and deferred() == 0


def test_the_beat_job_runs_each_complete_day_once(in_alpha):
    invoice_of((3_100, 0, 31))
    assert recognition_days_due(today=D0 + dt.timedelta(days=3)) == [
        D0 + dt.timedelta(days=n) for n in range(3)
    ]
    assert recognition_run_due(today=D0 + dt.timedelta(days=3)) == 3
    assert revenue() == 300
    assert recognition_run_due(today=D0 + dt.timedelta(days=3)) == 0  # today is not over: nothing
    assert recognition_run_due(today=D0 + dt.timedelta(days=40)) == 37
    assert revenue() == 3_100 and RecognitionRun.objects.count() == 40


def test_the_beat_entry_is_every_tenant():
    from django.conf import settings as django_settings

    from billing.ledger.tasks import recognition_daily

    entry = django_settings.CELERY_BEAT_SCHEDULE["revenue-recognition"]
    assert entry["task"] == recognition_daily.name and "tenant_schemas" not in entry


def test_a_discount_and_tax_leave_exactly_what_deferred_revenue_was_credited(in_alpha):
    from billing.discounts.services import coupon_create
    from billing.invoicing.taxes import tax_rate_create
    from billing.memberships.services import customer_discount_apply

    tax_rate_create(name="VAT", percent=Decimal(19), inclusive=True, country="DE")
    tax_rate_create(name="Levy", percent=Decimal(2))
    buyer, _ = customer_upsert(external_id="hans", country="DE")
    coupon_create(code="TEN", percent_off=Decimal(10), duration="forever")
    customer_discount_apply(customer=buyer, coupon_code="TEN")
    invoice = invoice_of((11_900, 0, 30), (1_191, 5, 7), (999, None, 0), customer="hans")
    assert invoice.discount > 0 and invoice.tax > 0
    credited = -JournalEntry.objects.get(
        transaction__source="invoice", account__code="deferred_revenue"
    ).amount
    assert credited == invoice.total - invoice.tax
    assert RecognitionSchedule.objects.aggregate(total=Sum("amount"))["total"] == credited
    run_days(0, 40)
    assert revenue() == credited and deferred() == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.tuples(
            st.integers(1, 10**12),  # amount
            st.floats(0, 5, allow_nan=False),  # start (days)
            st.floats(0.0001, 60, allow_nan=False),  # length (days)
        ),
        min_size=1,
        max_size=4,
    ),
    currency=st.sampled_from(["usd", "krw", "jpy"]),
    skip=st.sets(st.integers(0, 70), max_size=20),
)
def test_property_recognition_sums_exactly_to_the_invoice(in_alpha, lines, currency, skip):
    from django.db import transaction

    sid = transaction.savepoint()
    try:
        invoice_of(*lines, currency=currency)
        total = deferred(currency)
        seen = 0
        for n in range(70):
            if n in skip and n != 69:  # a missed day is caught up by the next
                continue
            recognition_run(day=D0 + dt.timedelta(days=n))
            assert revenue(currency) >= seen  # never backwards
            seen = revenue(currency)
            assert revenue(currency) + deferred(currency) == total
        assert revenue(currency) == total and deferred(currency) == 0
        for schedule in RecognitionSchedule.objects.all():
            assert schedule.recognized == schedule.amount
    finally:
        transaction.savepoint_rollback(sid)


def test_two_concurrent_runs_of_a_day_post_once(live_tenant):
    def setup():
        with tenant_context(live_tenant.tenant):
            invoice_of((9_000, 0, 9), customer="c1")

    committed(setup)

    def work(i):
        with tenant_context(live_tenant.tenant):
            return recognition_run(day=D0).pk

    assert len(set(run_parallel(work, 4))) == 1

    def state():
        with tenant_context(live_tenant.tenant):
            return (
                JournalTransaction.objects.filter(source="recognition").count(),
                revenue(),
                RecognitionSchedule.objects.get().recognized,
            )

    assert committed(state) == (1, 1_000, 1_000)


# --- corrections -------------------------------------------------------------------------------------


def test_a_credit_note_mid_period_reverses_the_unrecognized_part_first(in_alpha):
    from billing.invoicing.credit_notes import credit_note_create

    # given 300.00 over 30 days, 10 days recognized
    invoice = invoice_of((30_000, 0, 30))
    run_days(0, 9)
    assert revenue() == 10_000 and deferred() == 20_000

    # when 50.00 is credited (before payment: off what is due)
    note = credit_note_create(invoice_id=invoice.pk, amount=5_000)
    posted = JournalTransaction.objects.get(source="credit_note", source_id=str(note.pk))
    assert sorted((e.account.code, e.amount) for e in posted.entries.select_related("account")) == [
        ("deferred_revenue", 5_000),
        ("receivable", -5_000),
    ]
    assert revenue() == 10_000 and deferred() == 15_000

    # then the rest is spread over the 20 days left, and recognition ends at 250.00
    run_days(10, 10)
    assert revenue() == 10_000 + 750
    run_days(11, 40)
    assert revenue() == 25_000 and deferred() == 0
    assert ledger_balance(account="receivable", currency="usd") == 25_000
    check_constraints()


def test_a_credit_note_larger_than_the_unrecognized_part_takes_the_rest_from_revenue(in_alpha):
    from billing.invoicing.credit_notes import credit_note_create

    invoice = invoice_of((30_000, 0, 30))
    run_days(0, 24)  # 250.00 recognized, 50.00 deferred
    note = credit_note_create(invoice_id=invoice.pk, amount=12_000)
    entries = dict(
        JournalTransaction.objects.get(source="credit_note", source_id=str(note.pk)).entries.values_list(
            "account__code", "amount"
        )
    )
    assert entries == {"deferred_revenue": 5_000, "revenue": 7_000, "receivable": -12_000}
    assert deferred() == 0 and revenue() == 25_000 - 7_000
    run_days(25, 40)  # nothing left to recognize: deferred never goes negative
    assert deferred() == 0 and revenue() == 18_000


def test_a_refund_credit_note_clears_against_the_providers_refund(in_alpha):
    """A paid invoice refunded at the provider: the credit note credits `refunds`, the provider's refund
    payment debits it, so refunds nets to zero and the revenue side is moved once."""
    from billing.invoicing.services import engine_invoice_ref
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState

    invoice = invoice_of((6_000, 0, 30))
    run_days(0, 9)

    def record(kind, pid, amount, **kw):
        return payment_record(
            provider="sandbox", event_type=kind,
            payment=PaymentState(payment_id=pid, amount=amount, currency="usd", customer="ada", **kw),
            occurred_at=at(10), event_id=f"evt_{pid}",
        )  # fmt: skip

    record("payment.succeeded", "pay_1", 6_000, invoice=engine_invoice_ref(invoice), reference="pi_1")
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    record("refund.created", "re_1", 1_500, reference="pi_1")
    assert invoice.credit_notes.count() == 1
    assert ledger_balance(account="refunds", currency="usd") == 0
    assert ledger_balance(account="cash:sandbox", currency="usd") == 4_500
    assert ledger_balance(account="receivable", currency="usd") == 0
    assert deferred() == 4_000 - 1_500 and revenue() == 2_000
    run_days(10, 40)
    assert revenue() == 4_500 and deferred() == 0
    check_constraints()


def test_a_voided_invoice_nets_to_zero_even_after_recognition_and_a_credit_note(in_alpha):
    from billing.invoicing.credit_notes import credit_note_create
    from billing.invoicing.services import invoice_void

    invoice = invoice_of((3_000, 0, 30), (500, None, 0))
    run_days(0, 4)
    credit_note_create(invoice_id=invoice.pk, amount=700)
    invoice_void(invoice_id=invoice.pk)
    invoice_void(invoice_id=invoice.pk)
    for code in ("revenue", "deferred_revenue", "receivable", "tax_payable"):
        assert ledger_balance(account=code, currency="usd") == 0, code
    run_days(5, 40)  # nothing more is recognized
    assert revenue() == 0 and deferred() == 0
    check_constraints()


def test_uncollectible_writes_off_the_receivable_and_leaves_recognition_alone(in_alpha):
    from billing.invoicing.credit_notes import credit_note_create
    from billing.invoicing.services import invoice_mark_uncollectible

    invoice = invoice_of((3_000, 0, 30))
    credit_note_create(invoice_id=invoice.pk, amount=1_000)
    invoice_mark_uncollectible(invoice_id=invoice.pk)
    invoice_mark_uncollectible(invoice_id=invoice.pk)
    written = JournalTransaction.objects.get(source="uncollectible", source_id=str(invoice.pk))
    assert dict(written.entries.values_list("account__code", "amount")) == {
        "bad_debt": 2_000,
        "receivable": -2_000,
    }
    assert ledger_balance(account="receivable", currency="usd") == 0
    # a credit note after the write-off lowers the write-off, not the receivable
    credit_note_create(invoice_id=invoice.pk, amount=500)
    assert ledger_balance(account="bad_debt", currency="usd") == 1_500
    assert ledger_balance(account="receivable", currency="usd") == 0
    run_days(0, 40)
    assert revenue() == 1_500 and deferred() == 0
    check_constraints()


def test_a_refund_through_the_sandbox_posts_once_and_refunds_nets_to_zero(
    in_alpha, monkeypatch, django_capture_on_commit_callbacks
):
    """A credit note refunded through the sandbox engine: the note credits `refunds`, the refund's
    signed event (applied twice) debits it once; cash goes down by the refund, nothing else moves twice."""
    from billing.events.services import endpoint_create
    from billing.invoicing.credit_notes import credit_note_create
    from billing.providers.services import provider_account_upsert
    from tests.billing.test_credit_notes import charge, process_inbox

    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    provider_account_upsert(provider="sandbox")
    endpoint_create(url="https://hooks.example.test/in")
    invoice = invoice_of((4_900, 0, 30))
    charge(invoice, "pay_1", 4_900)
    run_days(0, 9)
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_note_create(invoice_id=invoice.pk, amount=1_000, refund=True)
    process_inbox()
    process_inbox()
    assert dict(
        JournalTransaction.objects.get(source="credit_note", source_id=str(note.pk)).entries.values_list(
            "account__code", "amount"
        )
    ) == {"deferred_revenue": 1_000, "refunds": -1_000}
    assert JournalTransaction.objects.filter(source="payment").count() == 2  # the charge, the refund
    assert ledger_balance(account="refunds", currency="usd") == 0
    assert ledger_balance(account="cash:sandbox", currency="usd") == 3_900
    assert deferred() == 4_900 - 1_633 - 1_000
    run_days(10, 40)
    assert revenue() == 3_900 and deferred() == 0
    check_constraints()


def test_a_written_off_invoice_paid_after_all_recovers_the_bad_debt(in_alpha):
    from billing.invoicing.services import engine_invoice_ref, invoice_mark_uncollectible
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState

    invoice = invoice_of((3_000, 0, 30))
    invoice_mark_uncollectible(invoice_id=invoice.pk)
    assert ledger_balance(account="bad_debt", currency="usd") == 3_000
    for pid, amount in (("pay_1", 1_000), ("pay_2", 2_000), ("pay_2", 2_000)):  # the last one replayed
        payment_record(
            provider="sandbox", event_type="payment.succeeded",
            payment=PaymentState(payment_id=pid, amount=amount, currency="usd", customer="ada",
                                 invoice=engine_invoice_ref(invoice)),
            occurred_at=at(3), event_id=f"evt_{pid}",
        )  # fmt: skip
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert JournalTransaction.objects.filter(source="bad_debt_recovery").count() == 2
    assert ledger_balance(account="bad_debt", currency="usd") == 0
    assert ledger_balance(account="receivable", currency="usd") == 0
    assert ledger_balance(account="cash:sandbox", currency="usd") == 3_000
    check_constraints()
