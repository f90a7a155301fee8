"""The double-entry ledger (issue 12 item 1): postings validated before the database, balanced
transactions enforced by the database at commit, append-only journal, idempotent (source,
source_id) also under concurrency, reversals, running balances that equal the sum of their
entries (now and at a past date), daily totals per source that equal the sums of their entries."""

import datetime as dt
from dataclasses import replace

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Sum
from django.test import Client
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.ledger.chart import account_kind
from billing.ledger.exceptions import PostingInvalid
from billing.ledger.models import (
    AccountBalance,
    DailyTotal,
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    RecognitionSchedule,
)
from billing.ledger.selectors import ledger_balance, ledger_balances, ledger_daily_debits
from billing.ledger.services import Posting, ledger_post, ledger_post_many, ledger_reverse
from tests.helpers import committed, run_parallel

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def post(source_id, entries, *, source="test", at=T0, **kwargs):
    return ledger_post(
        source=source, source_id=source_id, occurred_at=at, description="test", entries=entries, **kwargs
    )


def invoice_like(source_id, amount, *, currency="usd", at=T0):
    return post(source_id, [("receivable", currency, amount), ("deferred_revenue", currency, -amount)], at=at)


def daily_sums():
    """((source, UTC day, account code, currency): (debits, credits)) from the entries themselves,
    and from the daily totals the writer keeps."""
    from collections import defaultdict

    sums = defaultdict(lambda: [0, 0])
    for entry in JournalEntry.objects.select_related("transaction", "account"):
        key = (
            entry.transaction.source,
            entry.occurred_at.astimezone(dt.UTC).date(),
            entry.account.code,
            entry.currency,
        )
        sums[key][0 if entry.amount > 0 else 1] += entry.amount
    kept = {
        (row.source, row.day, row.account.code, row.currency): (row.debits, row.credits)
        for row in DailyTotal.objects.select_related("account")
    }
    return {key: tuple(value) for key, value in sums.items()}, kept


def check_deferred_constraints():
    """Fire the deferred constraint triggers now (the test's transaction never commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


# --- validation, before the database ---------------------------------------------------------------


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("receivable", "usd", 100)], "at least two"),
        ([("receivable", "usd", 100), ("deferred_revenue", "usd", -99)], "sum to zero"),
        ([("receivable", "usd", 100), ("deferred_revenue", "eur", -100)], "sum to zero"),
        ([("receivable", "usd", 0), ("deferred_revenue", "usd", 0)], "never zero"),
        ([("receivable", "usd", 1.5), ("deferred_revenue", "usd", -1.5)], "integers"),
        ([("receivable", "usd", True), ("deferred_revenue", "usd", -1)], "integers"),
        ([("receivable", "USD", 100), ("deferred_revenue", "USD", -100)], "lowercase"),
        ([("receivable", "us", 100), ("deferred_revenue", "us", -100)], "lowercase"),
        ([("recievable", "usd", 100), ("deferred_revenue", "usd", -100)], "No account"),
        ([("cash:", "usd", 100), ("deferred_revenue", "usd", -100)], "No account"),
    ],
)
def test_a_bad_posting_is_refused_before_the_database(in_alpha, entries, message):
    with pytest.raises(PostingInvalid, match=message) as raised:
        post("bad", entries)
    assert raised.value.code == "invalid_posting"
    assert not JournalTransaction.objects.exists() and not LedgerAccount.objects.exists()


def test_a_naive_date_is_refused(in_alpha):
    with pytest.raises(PostingInvalid, match="aware"):
        post("naive", [("receivable", "usd", 1), ("revenue", "usd", -1)], at=dt.datetime(2026, 1, 1))


def test_the_chart_knows_its_accounts():
    assert account_kind("cash:stripe")[0] == "asset"
    assert account_kind("payable:creator:ann.b")[0] == "liability"
    assert account_kind("deferred_revenue")[0] == "liability"
    assert account_kind("refunds")[0] == "revenue"
    assert account_kind("cash") is None and account_kind("payable:creator:") is None
    assert account_kind("payable:creator:A B") is None


# --- posting ----------------------------------------------------------------------------------------


def test_a_posting_writes_entries_running_balances_and_accounts_from_the_chart(in_alpha):
    txn = post(
        "inv-1",
        [("receivable", "usd", 1500), ("deferred_revenue", "usd", -1500)],
        metadata={"invoice": "A-1"},
    )
    post("pay-1", [("cash:stripe", "usd", 1000), ("receivable", "usd", -1000)], at=T0 + dt.timedelta(days=1))
    post("inv-2", [("receivable", "eur", 700), ("deferred_revenue", "eur", -700)])

    assert txn.metadata == {"invoice": "A-1"} and txn.entries.count() == 2
    assert ledger_balance(account="receivable", currency="usd") == 500
    assert ledger_balance(account="receivable", currency="eur") == 700
    assert ledger_balance(account="deferred_revenue", currency="usd") == -1500
    assert ledger_balance(account="cash:stripe", currency="usd") == 1000
    assert ledger_balance(account="cash:paypal", currency="usd") == 0
    assert LedgerAccount.objects.get(code="cash:stripe").kind == "asset"
    receivable = JournalEntry.objects.filter(account__code="receivable", currency="usd").order_by("id")
    assert [e.balance_after for e in receivable] == [1500, 500]
    check_deferred_constraints()


def test_the_same_source_twice_posts_once(in_alpha):
    first = invoice_like("inv-1", 1500)
    again = invoice_like("inv-1", 1500)
    assert again.pk == first.pk
    assert JournalTransaction.objects.count() == 1 and JournalEntry.objects.count() == 2
    assert ledger_balance(account="receivable", currency="usd") == 1500


def test_posting_many_posts_each_once_and_returns_them_in_order(in_alpha):
    first = invoice_like("inv-2", 200)
    postings = [
        Posting(source="test", source_id=f"inv-{i}", occurred_at=T0, description="",
                entries=[("receivable", "usd", 100 * i), ("deferred_revenue", "usd", -100 * i)])
        for i in (1, 2, 3, 3)
    ]  # fmt: skip
    result = ledger_post_many(postings)
    assert [t.source_id for t in result] == ["inv-1", "inv-2", "inv-3", "inv-3"]
    assert result[1].pk == first.pk and result[2].pk == result[3].pk
    assert ledger_balance(account="receivable", currency="usd") == 600
    assert [
        e.balance_after for e in JournalEntry.objects.filter(account__code="receivable").order_by("id")
    ] == [
        200,
        300,
        600,
    ]
    assert ledger_post_many(postings)[0].pk == result[0].pk and JournalTransaction.objects.count() == 3
    check_deferred_constraints()


# --- what the database enforces -----------------------------------------------------------------------


def _raw_transaction(source_id: str) -> JournalTransaction:
    return JournalTransaction.objects.create(source="raw", source_id=source_id, occurred_at=T0)


def _raw_entry(txn, code, amount, currency="usd"):
    account, _ = LedgerAccount.objects.get_or_create(code=code, defaults={"kind": "asset"})
    return JournalEntry.objects.create(
        transaction=txn, account=account, currency=currency, amount=amount, balance_after=0, occurred_at=T0
    )


def test_the_database_refuses_an_unbalanced_transaction_at_commit(in_alpha):
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = _raw_transaction("unbalanced")
        _raw_entry(txn, "receivable", 100)
        _raw_entry(txn, "revenue", -90)
        check_deferred_constraints()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = _raw_transaction("two-currencies")
        _raw_entry(txn, "receivable", 100, "usd")
        _raw_entry(txn, "revenue", -100, "eur")
        check_deferred_constraints()
    with pytest.raises(IntegrityError, match="at least two"), transaction.atomic():
        _raw_transaction("empty")
        check_deferred_constraints()


def test_a_balanced_transaction_may_be_written_entry_by_entry(in_alpha):
    txn = _raw_transaction("balanced")
    _raw_entry(txn, "receivable", 100)  # unbalanced until the next entry: checked at commit only
    _raw_entry(txn, "revenue", -100)
    check_deferred_constraints()


def test_the_database_refuses_zero_amounts_and_bad_currencies(in_alpha):
    with transaction.atomic():
        txn = _raw_transaction("zero")
        with pytest.raises(IntegrityError, match="amount_non_zero"), transaction.atomic():
            _raw_entry(txn, "receivable", 0)
        with pytest.raises(IntegrityError, match="entry_currency"), transaction.atomic():
            _raw_entry(txn, "receivable", 1, currency="USD")
        transaction.set_rollback(True)  # the transaction has no entries: its commit would fail


def test_the_journal_is_append_only(in_alpha):
    txn = invoice_like("inv-1", 1500)
    entry = txn.entries.first()
    for statement in (
        "UPDATE ledger_journalentry SET amount = amount * 2",
        "DELETE FROM ledger_journalentry",
        "UPDATE ledger_journaltransaction SET description = 'changed'",
        "DELETE FROM ledger_journaltransaction",
    ):
        with (
            pytest.raises(DatabaseError, match="Cannot"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).update(amount=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        txn.delete()
    assert JournalEntry.objects.get(pk=entry.pk).amount == entry.amount


def test_a_real_commit_of_an_unbalanced_transaction_fails_and_leaves_nothing(live_tenant):
    def unbalanced():
        with tenant_context(live_tenant.tenant), transaction.atomic():
            txn = _raw_transaction("unbalanced")
            _raw_entry(txn, "receivable", 100)
            _raw_entry(txn, "revenue", -1)

    with pytest.raises(IntegrityError, match="does not balance"):
        committed(unbalanced)

    def count():
        with tenant_context(live_tenant.tenant):
            return JournalTransaction.objects.count(), JournalEntry.objects.count()

    assert committed(count) == (0, 0)


# --- reversals ------------------------------------------------------------------------------------------


def test_a_reversal_posts_the_negation_once(in_alpha):
    original = post("pay-1", [("cash:stripe", "usd", 1000), ("receivable", "usd", -1000)])
    reversal = ledger_reverse(
        txn=original, reason="posted twice by mistake", occurred_at=T0 + dt.timedelta(days=2)
    )
    again = ledger_reverse(txn=original, reason="again")

    assert again.pk == reversal.pk and reversal.reverses_id == original.pk
    assert original.reversed_by == reversal
    assert sorted((e.account.code, e.amount) for e in reversal.entries.all()) == [
        ("cash:stripe", -1000),
        ("receivable", 1000),
    ]
    assert reversal.metadata["reason"] == "posted twice by mistake"
    assert ledger_balance(account="cash:stripe", currency="usd") == 0
    assert ledger_balance(account="cash:stripe", currency="usd", at=T0 + dt.timedelta(days=1)) == 1000
    assert JournalTransaction.objects.count() == 2
    check_deferred_constraints()


def test_postings_add_to_the_daily_totals_of_their_source_and_utc_day(in_alpha):
    evening_in_new_york = dt.datetime(2026, 1, 1, 20, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    first = post("pay-1", [("cash:stripe", "usd", 1000), ("receivable", "usd", -1000)], source="payment")
    post("pay-2", [("cash:stripe", "usd", 250), ("receivable", "usd", -250)], source="payment")
    post(
        "pay-3",
        [("cash:stripe", "usd", 40), ("receivable", "usd", -40)],
        source="payment",
        at=evening_in_new_york,
    )
    post("inv-1", [("receivable", "usd", 700), ("deferred_revenue", "usd", -700)], source="invoice")
    ledger_post_many(
        [
            Posting(source="payment", source_id=f"bulk-{i}", occurred_at=T0, description="",
                    entries=[("cash:stripe", "eur", 10 * i), ("receivable", "eur", -10 * i)])
            for i in (1, 2)
        ]
    )  # fmt: skip
    ledger_reverse(txn=first, reason="test", occurred_at=T0 + dt.timedelta(days=3))

    entries, kept = daily_sums()
    assert kept == entries
    jan1, jan2, jan4 = dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 4)
    assert kept[("payment", jan1, "cash:stripe", "usd")] == (1250, 0)
    assert kept[("payment", jan2, "cash:stripe", "usd")] == (40, 0)  # 01:30 UTC the next day
    assert kept[("payment", jan1, "cash:stripe", "eur")] == (30, 0)
    assert kept[("reversal", jan4, "cash:stripe", "usd")] == (0, -1000)
    assert kept[("invoice", jan1, "receivable", "usd")] == (700, 0)
    assert sorted(ledger_daily_debits(source="payment", start=jan1, end=jan1, prefixes=("cash:",))) == [
        ("cash:stripe", "eur", jan1, 30),
        ("cash:stripe", "usd", jan1, 1250),
    ]
    assert ledger_daily_debits(source="payment", start=jan2, end=jan4, codes=("receivable",)) == []
    assert ledger_daily_debits(source="payment", start=jan2, end=jan4, codes=("cash:stripe",)) == [
        ("cash:stripe", "usd", jan2, 40)
    ]
    check_deferred_constraints()


# --- concurrency -------------------------------------------------------------------------------------------


def test_concurrent_postings_keep_the_running_balance_equal_to_the_sum_of_entries(live_tenant):
    def work(i):
        with tenant_context(live_tenant.tenant):
            for n in range(5):
                # crossed account orders: the balance rows are locked in id order, never deadlock
                entries = [("cash:stripe", "usd", 100 + i), ("receivable", "usd", -(100 + i))]
                if i % 2:
                    entries.reverse()
                post(f"t{i}-{n}", entries)
                post("shared", [("receivable", "usd", 7), ("deferred_revenue", "usd", -7)])
            return True

    assert all(run_parallel(work, 6))

    def totals():
        with tenant_context(live_tenant.tenant):
            sums = {
                (row["account__code"], row["currency"]): row["total"]
                for row in JournalEntry.objects.values("account__code", "currency").annotate(
                    total=Sum("amount")
                )
            }
            balances = {
                (b.account.code, b.currency): b.balance
                for b in AccountBalance.objects.select_related("account")
            }
            shared = JournalTransaction.objects.filter(source_id="shared").count()
            last = {
                key: JournalEntry.objects.filter(account__code=key[0], currency=key[1])
                .order_by("-id")
                .first()
                .balance_after
                for key in sums
            }
            return sums, balances, shared, last, JournalTransaction.objects.count(), daily_sums()

    sums, balances, shared, last, count, (daily_entries, daily_kept) = committed(totals)
    assert shared == 1 and count == 31
    assert sums == balances == last
    assert daily_kept == daily_entries
    assert balances[("cash:stripe", "usd")] == 5 * sum(100 + i for i in range(6))
    assert balances[("deferred_revenue", "usd")] == -7


def test_the_same_source_posted_concurrently_posts_once(live_tenant):
    def work(i):
        with tenant_context(live_tenant.tenant):
            return post("evt-1", [("cash:stripe", "usd", 500), ("receivable", "usd", -500)]).pk

    ids = run_parallel(work, 6)
    assert len(set(ids)) == 1

    def state():
        with tenant_context(live_tenant.tenant):
            return JournalTransaction.objects.count(), ledger_balance(account="cash:stripe", currency="usd")

    assert committed(state) == (1, 500)


# --- property: random postings and reversals ------------------------------------------------------------

ACCOUNTS = [
    "cash:stripe",
    "cash:sandbox",
    "receivable",
    "deferred_revenue",
    "revenue",
    "refunds",
    "payable:creator:ann",
]
step = st.one_of(
    st.tuples(
        st.just("post"),
        st.lists(
            st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(["usd", "eur"]), st.integers(1, 10**9)),
            min_size=1,
            max_size=4,
        ),
        st.integers(0, 30),  # day it occurred
    ),
    st.tuples(st.just("reverse"), st.integers(0, 50), st.integers(0, 30)),
    st.tuples(st.just("replay"), st.integers(0, 50), st.integers(0, 30)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12), probe=st.integers(-1, 31))
def test_property_every_transaction_balances_and_balances_are_the_sum_of_their_entries(
    in_alpha, steps, probe
):
    with transaction.atomic():
        posted: list[JournalTransaction] = []
        for n, (kind, what, day) in enumerate(steps):
            at = T0 + dt.timedelta(days=day)
            if kind == "post":
                # each debit is balanced by a credit on the next account: random but balanced
                entries = []
                for code, currency, amount in what:
                    other = ACCOUNTS[(ACCOUNTS.index(code) + 1) % len(ACCOUNTS)]
                    entries += [(code, currency, amount), (other, currency, -amount)]
                posted.append(post(f"p{n}", entries, at=at))
            elif posted and kind == "reverse":
                ledger_reverse(txn=posted[what % len(posted)], reason="property", occurred_at=at)
            elif posted and kind == "replay":
                original = posted[what % len(posted)]
                again = post(original.source_id, [("revenue", "usd", 1), ("refunds", "usd", -1)], at=at)
                assert again.pk == original.pk

        check_deferred_constraints()
        for txn in JournalTransaction.objects.all():
            per_currency = txn.entries.values("currency").annotate(total=Sum("amount"))
            assert all(row["total"] == 0 for row in per_currency)
        at = T0 + dt.timedelta(days=probe, hours=12)
        at_balances = ledger_balances(at=at)
        for balance in AccountBalance.objects.select_related("account"):
            entries = JournalEntry.objects.filter(account=balance.account, currency=balance.currency)
            assert balance.balance == entries.aggregate(total=Sum("amount"))["total"]
            assert balance.balance == entries.order_by("-id").first().balance_after
            before = entries.filter(occurred_at__lte=at).aggregate(total=Sum("amount"))["total"] or 0
            assert ledger_balance(account=balance.account, currency=balance.currency, at=at) == before
            assert at_balances[balance.account_id][balance.currency] == before
        entries, kept = daily_sums()
        assert kept == entries
        transaction.set_rollback(True)


# --- what posts today: invoices, payments, refunds, lost disputes ---------------------------------------

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _entries(txn):
    return sorted((e.account.code, e.currency, e.amount) for e in txn.entries.select_related("account"))


def _record(event_type, payment_id, amount, *, provider="sandbox", invoice="", reference="", at=NOW):
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState

    return payment_record(
        provider=provider,
        event_type=event_type,
        payment=PaymentState(
            payment_id=payment_id, amount=amount, currency="usd", customer="ada", invoice=invoice,
            reference=reference,
        ),
        occurred_at=at,
        event_id=f"evt_{payment_id}",
    )  # fmt: skip


def _finalized_invoice(*amounts):
    from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
    from billing.memberships.services import customer_upsert

    customer, _ = customer_upsert(external_id="ada")
    draft, _ = invoice_draft_create(
        customer=customer,
        currency="usd",
        lines=[LineDraft(kind="fee", description=f"Line {i}", amount=a) for i, a in enumerate(amounts)],
    )
    assert not JournalTransaction.objects.exists()  # a draft posts nothing
    return invoice_finalize(invoice_id=draft.pk)


def test_invoice_then_payment_then_refund_then_lost_dispute_post_the_expected_entries(in_alpha):
    from billing.invoicing.services import engine_invoice_ref, invoice_finalize

    # given an invoice of 49.00 finalized (twice: posts once)
    invoice = _finalized_invoice(4900)
    invoice_finalize(invoice_id=invoice.pk)
    posted = JournalTransaction.objects.get(source="invoice", source_id=str(invoice.pk))
    assert _entries(posted) == [("deferred_revenue", "usd", -4900), ("receivable", "usd", 4900)]
    assert posted.metadata["number"] == invoice.number and posted.occurred_at == invoice.finalized_at

    # when its charge is reported (twice: recorded and posted once)
    charge = _record(
        "payment.succeeded", "pay_1", 4900, invoice=engine_invoice_ref(invoice), reference="pi_1"
    )
    _record("payment.succeeded", "pay_1", 4900, invoice=engine_invoice_ref(invoice), reference="pi_1")
    paid = JournalTransaction.objects.get(source="payment", source_id=str(charge.pk))
    assert _entries(paid) == [("cash:sandbox", "usd", 4900), ("receivable", "usd", -4900)]
    assert paid.occurred_at == NOW

    # then a partial refund and a lost dispute
    refund = _record("refund.created", "re_1", 1000, reference="pi_1", at=NOW + dt.timedelta(days=3))
    lost = _record("dispute.lost", "dp_1", 3900, reference="pi_1", at=NOW + dt.timedelta(days=9))
    _record("dispute.created", "dp_1", 3900, reference="pi_1")  # an opened dispute moves no money here
    assert _entries(JournalTransaction.objects.get(source="payment", source_id=str(refund.pk))) == [
        ("cash:sandbox", "usd", -1000),
        ("refunds", "usd", 1000),
    ]
    assert _entries(JournalTransaction.objects.get(source="payment", source_id=str(lost.pk))) == [
        ("cash:sandbox", "usd", -3900),
        ("chargebacks", "usd", 3900),
    ]
    # and, since revenue recognition: the one-off line recognized at finalization, and the refund's
    # credit note (Dr revenue / Cr refunds, which the provider's refund then clears)
    assert sorted(JournalTransaction.objects.values_list("source", flat=True)) == [
        "credit_note", "invoice", "payment", "payment", "payment", "recognition",
    ]  # fmt: skip
    assert ledger_balance(account="receivable", currency="usd") == 0
    assert ledger_balance(account="cash:sandbox", currency="usd") == 0
    assert ledger_balance(account="cash:sandbox", currency="usd", at=NOW + dt.timedelta(days=5)) == 3900
    assert ledger_balance(account="deferred_revenue", currency="usd") == 0
    assert ledger_balance(account="revenue", currency="usd") == -3900
    assert ledger_balance(account="refunds", currency="usd") == 0
    check_deferred_constraints()


def test_a_voided_invoice_is_reversed_once(in_alpha):
    from billing.invoicing.services import invoice_void

    invoice = _finalized_invoice(4900)
    invoice_void(invoice_id=invoice.pk)
    invoice_void(invoice_id=invoice.pk)  # voiding again changes nothing
    original = JournalTransaction.objects.get(source="invoice", source_id=str(invoice.pk))
    reversal = JournalTransaction.objects.get(reverses=original)
    assert _entries(reversal) == [("deferred_revenue", "usd", 4900), ("receivable", "usd", -4900)]
    assert "voided" in reversal.description
    # its one-off line was recognized at finalization: the void takes that revenue back, once
    assert sorted(JournalTransaction.objects.values_list("source", "source_id")) == [
        ("invoice", str(invoice.pk)), ("recognition", f"invoice-{invoice.pk}"),
        ("recognition", f"void-{invoice.pk}"), ("reversal", str(original.pk)),
    ]  # fmt: skip
    assert ledger_balance(account="receivable", currency="usd") == 0
    assert ledger_balance(account="deferred_revenue", currency="usd") == 0
    assert ledger_balance(account="revenue", currency="usd") == 0
    check_deferred_constraints()


def test_a_failed_charge_and_a_free_invoice_post_nothing(in_alpha):
    from billing.invoicing.services import engine_invoice_ref

    invoice = _finalized_invoice(0)
    assert invoice.status == "paid" and not JournalTransaction.objects.exists()
    _record("payment.failed", "pay_f", 4900, invoice=engine_invoice_ref(invoice))
    assert not JournalTransaction.objects.exists()


def test_an_invoices_tax_is_owed_not_deferred(in_alpha):
    from billing.invoicing.mirror import invoice_mirror
    from billing.memberships.services import customer_upsert
    from billing.providers.base import InvoiceLineState, InvoiceState

    customer_upsert(external_id="ada")
    state = InvoiceState(
        invoice_id="in_1", status="paid", currency="usd", subtotal=1000, tax=200, total=1200,
        customer="ada", number="STRIPE-1", lines=(InvoiceLineState(description="Pro", amount=1000),),
    )  # fmt: skip
    invoice, _ = invoice_mirror(provider="stripe", state=state, occurred_at=NOW, event_id="evt_in_1")
    invoice_mirror(provider="stripe", state=state, occurred_at=NOW, event_id="evt_in_1_again")
    posted = JournalTransaction.objects.get(source="invoice")
    assert posted.source_id == str(invoice.pk) and posted.metadata["collected_by"] == "provider"
    assert _entries(posted) == [
        ("deferred_revenue", "usd", -1000),
        ("receivable", "usd", 1200),
        ("tax_payable", "usd", -200),
    ]


def test_a_billing_run_posts_each_issued_invoice_once_in_bulk(in_alpha):
    from billing.invoicing.services import InvoiceSpec, LineDraft, invoices_issue_many
    from billing.memberships.services import customer_upsert

    customers = [customer_upsert(external_id=f"c{i}")[0] for i in range(30)]
    specs = [
        InvoiceSpec(customer=c, currency="usd", period_key=f"run:{c.pk}",
                    lines=[LineDraft(kind="fee", description="Fee", amount=100 * (i % 3))])
        for i, c in enumerate(customers)
    ]  # fmt: skip
    invoices = invoices_issue_many(specs)
    invoices_issue_many(specs)  # the run again: nothing new
    billed = [invoice for invoice in invoices if invoice.total]
    assert len(billed) == 20
    assert set(JournalTransaction.objects.filter(source="invoice").values_list("source_id", flat=True)) == {
        str(i.pk) for i in billed
    }
    assert JournalTransaction.objects.filter(source="recognition").count() == 20  # one-off fees: at once
    assert ledger_balance(account="receivable", currency="usd") == sum(i.total for i in billed) == 3000
    check_deferred_constraints()


def test_a_failing_posting_rolls_the_finalization_back(in_alpha, monkeypatch):
    from billing.invoicing.models import Invoice
    from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
    from billing.ledger import postings
    from billing.memberships.services import customer_upsert

    customer, _ = customer_upsert(external_id="ada")
    draft, _ = invoice_draft_create(
        customer=customer, currency="usd", lines=[LineDraft(kind="fee", description="Fee", amount=100)]
    )
    broken = postings.invoice_posting(draft)
    monkeypatch.setattr(
        postings, "invoice_posting", lambda invoice: replace(broken, entries=broken.entries[:1])
    )
    with pytest.raises(PostingInvalid):
        invoice_finalize(invoice_id=draft.pk)
    assert Invoice.objects.get(pk=draft.pk).status == "draft" and not JournalTransaction.objects.exists()


# --- API ------------------------------------------------------------------------------------------------


def test_the_ledger_api_lists_accounts_with_balances_and_transactions_with_entries(alpha, beta):
    with tenant_context(alpha.tenant):
        invoice_like("inv-1", 1500, at=T0)
        paid = post(
            "pay-1",
            [("cash:stripe", "usd", 1000), ("receivable", "usd", -1000)],
            at=T0 + dt.timedelta(days=2),
        )
        invoice_like("inv-2", 700, currency="eur", at=T0 + dt.timedelta(days=3))
        reversal = ledger_reverse(txn=paid, reason="mistake", occurred_at=T0 + dt.timedelta(days=4))
    api = alpha.api()

    accounts = api.get("/api/v1/ledger/accounts").json()
    assert accounts["next"] is None and accounts["previous"] is None
    by_code = {a["code"]: a for a in accounts["results"]}
    assert [a["code"] for a in accounts["results"]] == ["cash:stripe", "deferred_revenue", "receivable"]
    assert by_code["receivable"]["kind"] == "asset"
    assert by_code["receivable"]["balances"] == [
        {"currency": "eur", "balance": 700},
        {"currency": "usd", "balance": 1500},
    ]
    assert by_code["cash:stripe"]["balances"] == [{"currency": "usd", "balance": 0}]
    at = api.get("/api/v1/ledger/accounts", {"at": "2026-01-03T12:00:00+00:00"}).json()
    by_code = {a["code"]: a for a in at["results"]}
    assert by_code["receivable"]["balances"] == [
        {"currency": "eur", "balance": 0},
        {"currency": "usd", "balance": 500},
    ]
    assert by_code["cash:stripe"]["balances"] == [{"currency": "usd", "balance": 1000}]

    page = api.get("/api/v1/ledger/transactions", {"limit": 2}).json()
    assert [t["source_id"] for t in page["results"]] == [str(paid.pk), "inv-2"] and page["next"]
    assert page["results"][0]["source"] == "reversal" and page["results"][0]["reverses"] == paid.pk
    rest = Client(HTTP_HOST=alpha.host, HTTP_AUTHORIZATION=f"Bearer {alpha.api_key}").get(page["next"]).json()
    assert [t["source_id"] for t in rest["results"]] == ["pay-1", "inv-1"]
    assert rest["results"][0]["reversed_by"] == reversal.pk

    def ids(**query):
        return [t["source_id"] for t in api.get("/api/v1/ledger/transactions", query).json()["results"]]

    assert ids(account="cash:stripe") == [str(paid.pk), "pay-1"]
    assert ids(source="test") == ["inv-2", "pay-1", "inv-1"]
    assert ids(**{"from": "2026-01-02T00:00:00Z", "to": "2026-01-05T00:00:00Z"}) == ["inv-2", "pay-1"]
    assert ids(account="nothing") == []

    detail = api.get(f"/api/v1/ledger/transactions/{paid.pk}").json()
    assert detail["source"] == "test" and detail["occurred_at"] == "2026-01-03T00:00:00Z"
    assert [(e["account"], e["currency"], e["amount"], e["balance_after"]) for e in detail["entries"]] == [
        ("cash:stripe", "usd", 1000, 1000),
        ("receivable", "usd", -1000, 500),
    ]

    # bad input is a 400 that says why; another tenant's transaction is a 404
    for query in (
        {"from": "yesterday"},
        {"to": "2026-01-01T00:00:00"},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ):
        response = api.get("/api/v1/ledger/transactions", query)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_ledger_query"
    assert api.get("/api/v1/ledger/accounts", {"at": "soon"}).status_code == 400
    missing = beta.api().get(f"/api/v1/ledger/transactions/{paid.pk}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_transaction"
    assert beta.api().get("/api/v1/ledger/accounts").json()["results"] == []


# --- end to end: a sandbox subscription's invoices and charges ------------------------------------------


@pytest.fixture
def shop(alpha, monkeypatch):
    """alpha selling the usage catalog through the sandbox (as tests/billing/test_period_close.py)."""
    from billing.providers.services import provider_account_upsert
    from billing.tiers.catalog import catalog_import
    from tests.billing.test_usage_prices import USAGE

    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    response = alpha.api().post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert response.status_code == 201
    return alpha


def test_a_sandbox_subscription_and_its_renewal_post_invoices_and_charges(
    shop, django_capture_on_commit_callbacks
):
    from tests.billing import test_period_close as flow
    from tests.billing.test_sandbox_checkout import advance

    flow.subscribe(shop, django_capture_on_commit_callbacks)
    flow.use(shop, 12_000, 501)
    advance(shop, 31, django_capture_on_commit_callbacks)
    first, renewal = flow.invoices(shop)
    assert (first.total, renewal.total, renewal.status) == (2900, 22_025, "paid")
    with tenant_context(shop.tenant):
        by_source = {
            (txn.source, txn.metadata.get("invoice") or txn.metadata.get("kind")): _entries(txn)
            for txn in JournalTransaction.objects.all()
        }
        assert by_source[("invoice", first.pk)] == [
            ("deferred_revenue", "usd", -2900),
            ("receivable", "usd", 2900),
        ]
        assert by_source[("invoice", renewal.pk)] == [
            ("deferred_revenue", "usd", -22_025),
            ("receivable", "usd", 22_025),
        ]
        assert JournalTransaction.objects.filter(source="payment").count() == 2
        assert ledger_balance(account="cash:sandbox", currency="usd") == 2900 + 22_025
        assert ledger_balance(account="receivable", currency="usd") == 0
        assert ledger_balance(account="deferred_revenue", currency="usd") == -(2900 + 22_025)


def test_staff_read_the_ledger_in_the_admin_and_cannot_change_it(alpha):
    from accounts.models import User

    with tenant_context(alpha.tenant):
        txn = invoice_like("inv-admin", 4321)
        owner = User.objects.get(email=alpha.owner_email)
        account = LedgerAccount.objects.get(code="receivable")
        client = Client(HTTP_HOST=alpha.host)
        client.force_login(owner)
    assert b"inv-admin" in client.get("/admin/ledger/journaltransaction/").content
    assert b"4321" in client.get(f"/admin/ledger/journaltransaction/{txn.pk}/change/").content
    assert b"4321" in client.get(f"/admin/ledger/ledgeraccount/{account.pk}/change/").content
    assert client.get("/admin/ledger/journaltransaction/add/").status_code == 403
    assert (
        client.post(f"/admin/ledger/journaltransaction/{txn.pk}/delete/", {"post": "yes"}).status_code == 403
    )


def test_the_backfill_posts_what_the_ledger_missed_once(alpha):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from billing.invoicing.services import (
        LineDraft,
        engine_invoice_ref,
        invoice_draft_create,
        invoice_finalize,
        invoice_void,
    )

    with tenant_context(alpha.tenant):
        # given an invoice paid and one voided, then a ledger that lost them (as before the ledger
        # existed: TRUNCATE empties the tables without firing the append-only triggers)
        paid = _finalized_invoice(4900)
        charge = _record("payment.succeeded", "pay_1", 4900, invoice=engine_invoice_ref(paid))
        draft, _ = invoice_draft_create(
            customer=paid.customer,
            currency="usd",
            lines=[LineDraft(kind="fee", description="x", amount=2500)],
        )
        invoice_void(invoice_id=invoice_finalize(invoice_id=draft.pk).pk)
        # the voided one's posting and its reversal; both one-off lines recognized, one taken back
        assert JournalTransaction.objects.count() == 7
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "TRUNCATE ledger_journalentry, ledger_accountbalance, ledger_dailytotal, ledger_journaltransaction,"
                " ledger_ledgeraccount, ledger_recognitionrun, ledger_recognitionschedule"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def backfill(**options) -> str:
        out = io.StringIO()
        call_command("ledger_backfill", tenant="alpha", stdout=out, **options)
        return out.getvalue()

    # when it runs (one posting per batch), and again
    assert "3 transaction(s) posted" in backfill(batch=1)
    assert "0 transaction(s) posted" in backfill()

    # then the paid invoice and its charge are posted once each, the void invoice not at all
    with tenant_context(alpha.tenant):
        assert set(JournalTransaction.objects.values_list("source", "source_id")) == {
            ("invoice", str(paid.pk)),
            ("payment", str(charge.pk)),
            ("recognition", f"invoice-{paid.pk}"),  # its one-off line, with its schedule
        }
        assert RecognitionSchedule.objects.filter(invoice=paid).count() == 1
        assert ledger_balance(account="cash:sandbox", currency="usd") == 4900
        assert ledger_balance(account="receivable", currency="usd") == 0
        entries, kept = daily_sums()
        assert kept == entries
        check_deferred_constraints()
    with pytest.raises(CommandError):
        call_command("ledger_backfill", tenant="nope")
