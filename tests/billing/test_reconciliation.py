"""Reconciliation (issue 12 item 7): the ledger against the provider's own books, per (provider,
UTC day), once. A clean run finds zero differences; injected ones are each found; the sandbox's
books are its engine's charges and refunds, Stripe's are its balance transactions (localstripe)."""

import datetime as dt
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import tenant_context

from billing.ledger.reconciliation.models import ReconciliationItem, ReconciliationRun
from billing.ledger.reconciliation.services import reconciliation_daily, reconciliation_run
from billing.memberships.models import Payment
from billing.providers.base import PaymentState
from tests.billing.test_ledger import shop  # noqa: F401
from tests.billing.test_webhooks_in import process_all


def _sandbox_day(fixture):
    from billing.invoicing.engine.sandbox import sandbox_now

    with tenant_context(fixture.tenant):
        return sandbox_now().date()


def _kinds(run) -> list[tuple[str, str]]:
    return sorted(ReconciliationItem.objects.filter(run=run).values_list("kind", "provider_ref"))


@pytest.fixture
def sandbox_books(shop, django_capture_on_commit_callbacks):  # noqa: F811
    """alpha's customer subscribed through the sandbox (29.00, with a simulated 2.9 % fee) and got
    10.00 back: two movements in the sandbox's books, two payments and postings of ours."""
    from billing.invoicing.engine.sandbox import refund_create
    from tenants.middleware import tenant_cache_clear
    from tests.billing import test_period_close as flow

    shop.tenant.sandbox_fee_bps = 290
    shop.tenant.save(update_fields=["sandbox_fee_bps"])
    tenant_cache_clear()
    flow.subscribe(shop, django_capture_on_commit_callbacks)
    with tenant_context(shop.tenant):
        charge = Payment.objects.get(kind="charge")
        with django_capture_on_commit_callbacks(execute=True):
            refund_create(
                payment_id=charge.provider_payment_id, amount=1000, currency="usd", idempotency_key="cn-1"
            )
    process_all(shop)
    with tenant_context(shop.tenant):
        assert sorted(Payment.objects.values_list("kind", "amount", "fee_amount")) == [
            ("charge", 2900, 84),
            ("refund", 1000, 0),
        ]
    return shop, charge


def test_a_clean_sandbox_day_reconciles_with_zero_differences_once(sandbox_books):
    fixture, _charge = sandbox_books
    day = _sandbox_day(fixture)
    with tenant_context(fixture.tenant):
        run = reconciliation_run(provider="sandbox", day=day)
        assert (run.status, run.provider_count, run.ledger_count, run.matched_count, run.difference_count) == (
            "balanced", 2, 2, 2, 0,
        )  # fmt: skip
        assert not ReconciliationItem.objects.exists()
        # again (the daily job and the command): the same run, not another
        again = reconciliation_run(provider="sandbox", day=day)
        assert again.pk == run.pk and ReconciliationRun.objects.count() == 1
        # the days around it hold nothing of either side
        before = reconciliation_run(provider="sandbox", day=day - dt.timedelta(days=1))
        assert (before.status, before.provider_count, before.ledger_count) == ("balanced", 0, 0)


def test_injected_differences_are_each_found(sandbox_books):
    from billing.invoicing.engine.sandbox import sandbox_now
    from billing.memberships.services import payment_record
    from billing.providers.models import EngineCharge, SandboxRefund
    from kernel.metrics import RECONCILIATION_DIFFERENCES

    fixture, charge = sandbox_books
    day = _sandbox_day(fixture)
    with tenant_context(fixture.tenant):
        now = sandbox_now()
        # the sandbox kept another fee than the one we recorded
        EngineCharge.objects.filter(payment_key=charge.provider_payment_id).update(fee_amount=90)
        # the sandbox refunded money we never heard of
        SandboxRefund.objects.create(refund_id="re_unknown", payment_id=charge.provider_payment_id, amount=500,
                                     currency="usd", created_at=now)  # fmt: skip
        # we recorded a charge the sandbox never made
        payment_record(
            provider="sandbox", event_type="payment.succeeded", occurred_at=now, event_id="evt_ghost",
            payment=PaymentState(payment_id="pay_ghost", amount=700, currency="usd", customer="c1"),
        )  # fmt: skip
        # and our refund says 9.00 where the sandbox's says 10.00
        Payment.objects.filter(kind="refund").update(amount=900)
        run = reconciliation_run(provider="sandbox", day=day)
        refund_id = SandboxRefund.objects.exclude(refund_id="re_unknown").get().refund_id
        assert run.status == "differences" and run.difference_count == 4
        assert _kinds(run) == sorted(
            [
                ("amount_mismatch", refund_id),
                ("fee_mismatch", charge.provider_payment_id),
                ("missing_at_provider", "pay_ghost"),
                ("missing_in_ledger", "re_unknown"),
            ]
        )
        fee = ReconciliationItem.objects.get(kind="fee_mismatch")
        assert (fee.provider_fee, fee.our_fee, fee.provider_amount, fee.our_amount) == (90, 84, 2900, 2900)
        ghost = ReconciliationItem.objects.get(kind="missing_at_provider")
        assert (ghost.our_amount, ghost.ledger_amount, ghost.provider_amount) == (700, 700, None)
        assert (
            RECONCILIATION_DIFFERENCES.labels(tenant=fixture.tenant.slug, provider="sandbox")._value.get()
            == 4
        )
        # fixed at the provider's side: a forced re-run of the day replaces the items
        EngineCharge.objects.filter(payment_key=charge.provider_payment_id).update(fee_amount=84)
        SandboxRefund.objects.filter(refund_id="re_unknown").delete()
        rerun = reconciliation_run(provider="sandbox", day=day, force=True)
        assert rerun.pk == run.pk and rerun.difference_count == 2
        assert [kind for kind, _ in _kinds(rerun)] == ["amount_mismatch", "missing_at_provider"]


def test_a_payment_the_ledger_never_posted_is_missing_in_the_ledger(sandbox_books):
    fixture, charge = sandbox_books
    with tenant_context(fixture.tenant):
        # the journal is append-only, so a lost posting is staged the other way round: the posted
        # payment takes another id and the sandbox's charge finds a twin of it that was never posted
        Payment.objects.filter(pk=charge.pk).update(provider_payment_id="pay_renamed")
        Payment.objects.create(
            customer=charge.customer, provider="sandbox", provider_payment_id=charge.provider_payment_id,
            kind="charge", amount=2900, fee_amount=84, currency="usd", occurred_at=charge.occurred_at,
        )  # fmt: skip
        run = reconciliation_run(provider="sandbox", day=_sandbox_day(fixture))
        assert _kinds(run) == [
            ("missing_at_provider", "pay_renamed"),
            ("missing_in_ledger", charge.provider_payment_id),
        ]
        item = ReconciliationItem.objects.get(kind="missing_in_ledger")
        assert (item.provider_amount, item.our_amount, item.ledger_amount) == (2900, 2900, None)
        assert "never posted" in item.details["reason"]


def test_the_command_prints_progress_and_refuses_bad_input(sandbox_books):
    fixture, _charge = sandbox_books
    day = _sandbox_day(fixture)
    out = StringIO()
    call_command("reconcile", "--tenant", "alpha", "--day", day.isoformat(), "--days", "2", stdout=out)
    text = out.getvalue()
    assert (
        "reading the provider's books" in text
        and "balanced" in text
        and "0 unexplained difference(s)" in text
    )
    with tenant_context(fixture.tenant):
        assert ReconciliationRun.objects.count() == 2
    for bad in (["--day", "yesterday"], ["--days", "0"], ["--provider", "stripe"]):
        with pytest.raises(CommandError):
            call_command("reconcile", "--tenant", "alpha", *bad, stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("reconcile", "--tenant", "nobody", stdout=StringIO())


def test_the_daily_job_reconciles_yesterday_and_retries_failed_days(sandbox_books, monkeypatch):
    from billing.ledger.reconciliation.tasks import reconciliation_daily_task
    from billing.providers.base import ProviderUnavailable
    from billing.providers.sandbox import SandboxProvider

    fixture, _charge = sandbox_books
    today = _sandbox_day(fixture) + dt.timedelta(days=1)

    def down(self, *, since, until):
        raise ProviderUnavailable("The sandbox did not answer.")

    with tenant_context(fixture.tenant):
        monkeypatch.setattr(SandboxProvider, "balance_transactions", down)
        [failed] = reconciliation_daily(today=today)
        assert (failed.status, failed.day) == ("failed", today - dt.timedelta(days=1))
        monkeypatch.undo()
        # the next day's job reconciles its own yesterday and the failed day
        runs = reconciliation_daily(today=today + dt.timedelta(days=1))
        assert sorted((run.day, run.status) for run in runs) == [
            (today - dt.timedelta(days=1), "balanced"),
            (today, "balanced"),
        ]
        assert reconciliation_daily_task.name == "reconciliation.daily"


# --- Stripe: its balance transactions at localstripe ------------------------------------------------


@pytest.fixture
def stripe_books(in_alpha, localstripe):
    """alpha's Stripe account at localstripe (its store flushed: the session's other tests' charges
    are not alpha's), a customer with a card, and our customer c1."""
    import stripe

    from billing.memberships.services import customer_upsert
    from billing.providers.services import provider_account_upsert

    httpx.delete(f"{localstripe}/_config/data").raise_for_status()
    provider_account_upsert(
        provider="stripe", credentials={"api_key": "sk_test_localstripe", "api_base": localstripe},
        webhook_secret="whsec_x", make_default=True,
    )  # fmt: skip
    customer_upsert(external_id="c1")
    client = stripe.StripeClient("sk_test_localstripe", base_addresses={"api": localstripe})
    customer = client.v1.customers.create(params={"email": "c1@example.com"})
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})

    def pay(amount: int):
        return client.v1.payment_intents.create(
            params={"amount": amount, "currency": "usd", "customer": customer.id, "payment_method": card.id,
                    "confirm": True}
        )  # fmt: skip

    from billing.providers.stripe import StripeProvider

    adapter = StripeProvider(webhook_secret="whsec_x", api_key="sk_test_localstripe", api_base=localstripe)
    return client, adapter, pay


def _record_intent(adapter, intent, *, charge_id: str):
    """Record the intent's charge as its webhook would (payment_intent.succeeded), fee fetched."""
    from billing.memberships.services import payment_record

    state = PaymentState(payment_id=intent.id, amount=intent.amount, currency="usd", customer="c1",
                         reference=charge_id, intent=intent.id)  # fmt: skip
    state = PaymentState(**{**vars(state), "fee": adapter.payment_fee(state)})
    return payment_record(provider="stripe", event_type="order.paid", payment=state,
                          occurred_at=dt.datetime.now(dt.UTC), event_id=f"evt_{intent.id}")  # fmt: skip


def test_stripe_balance_transactions_at_localstripe_reconcile_then_show_injected_differences(stripe_books):
    from billing.memberships.services import payment_record

    client, adapter, pay = stripe_books
    today = dt.datetime.now(dt.UTC).date()
    intent = pay(4900)
    charge_id = client.v1.charges.list(params={"limit": 1}).data[0].id
    # the fee is fetched through the adapter from localstripe's balance transaction (localstripe: 0)
    assert adapter.payment_fee(PaymentState(payment_id=intent.id, amount=4900, currency="usd", customer="c1",
                                            intent=intent.id)) == 0  # fmt: skip
    charge = _record_intent(adapter, intent, charge_id=charge_id)
    refund = adapter.refund(
        payment_id=intent.id, amount=1500, currency="usd", idempotency_key="cn-1", reason="other"
    )
    payment_record(
        provider="stripe", event_type="refund.created", occurred_at=dt.datetime.now(dt.UTC), event_id="evt_re",
        payment=PaymentState(payment_id=refund.refund_id, amount=1500, currency="usd", customer="",
                             reference=charge_id, intent=intent.id),
    )  # fmt: skip
    # a one-time purchase, known to us by its payment intent alone (as its checkout session names it)
    one_time = pay(1200)
    payment_record(
        provider="stripe", event_type="order.paid", occurred_at=dt.datetime.now(dt.UTC), event_id="evt_cs",
        payment=PaymentState(payment_id=one_time.id, amount=1200, currency="usd", customer="c1", intent=one_time.id),
    )  # fmt: skip
    entries = adapter.balance_transactions(
        since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    assert sorted((e.type, e.amount, e.related) for e in entries) == [
        ("charge", 1200, (one_time.id,)), ("charge", 4900, (intent.id,)), ("refund", -1500, ()),
    ]  # fmt: skip
    assert {e.source for e in entries} >= {charge_id, refund.refund_id}
    run = reconciliation_run(provider="stripe", day=today)
    assert (run.status, run.provider_count, run.ledger_count, run.matched_count) == ("balanced", 3, 3, 3)

    # injected: a charge at Stripe we never recorded, and a fee we recorded that Stripe did not keep
    pay(2500)
    Payment.objects.filter(pk=charge.pk).update(fee_amount=145)
    rerun = reconciliation_run(provider="stripe", day=today, force=True)
    assert rerun.difference_count == 2
    assert [kind for kind, _ in _kinds(rerun)] == ["fee_mismatch", "missing_in_ledger"]
    missing = ReconciliationItem.objects.get(kind="missing_in_ledger")
    assert (missing.provider_amount, missing.provider_entry.startswith("txn_")) == (2500, True)


# --- the API and the staff pages ---------------------------------------------------------------------


@pytest.fixture
def runs(sandbox_books):
    """A balanced run of the sandbox's day, and the day after with a difference injected."""
    from billing.invoicing.engine.sandbox import sandbox_now
    from billing.memberships.services import payment_record

    fixture, _charge = sandbox_books
    day = _sandbox_day(fixture)
    with tenant_context(fixture.tenant):
        balanced = reconciliation_run(provider="sandbox", day=day)
        payment_record(
            provider="sandbox", event_type="payment.succeeded", occurred_at=sandbox_now() + dt.timedelta(days=1),
            event_id="evt_ghost", payment=PaymentState(payment_id="pay_ghost", amount=700, currency="usd", customer="c1"),
        )  # fmt: skip
        off = reconciliation_run(provider="sandbox", day=day + dt.timedelta(days=1))
    assert (balanced.status, off.status) == ("balanced", "differences")
    return fixture, balanced, off


def test_the_api_lists_runs_and_shows_one_with_its_differences(runs, beta):
    fixture, balanced, off = runs
    api = fixture.api()
    body = api.get("/api/v1/reconciliation/runs").json()
    assert [run["id"] for run in body["results"]] == [off.pk, balanced.pk]
    assert set(body) == {"results", "next", "previous"}
    assert body["results"][1] | {"started_at": None, "finished_at": None, "window_start": None, "window_end": None} == {
        "id": balanced.pk, "provider": "sandbox", "day": balanced.day.isoformat(), "status": "balanced",
        "provider_count": 2, "ledger_count": 2, "matched_count": 2, "difference_count": 0, "error": "",
        "started_at": None, "finished_at": None, "window_start": None, "window_end": None,
    }  # fmt: skip
    differences = api.get("/api/v1/reconciliation/runs?status=differences").json()["results"]
    assert [run["id"] for run in differences] == [off.pk]
    assert api.get("/api/v1/reconciliation/runs?provider=stripe").json()["results"] == []
    detail = api.get(f"/api/v1/reconciliation/runs/{off.pk}").json()
    [item] = detail["items"]
    assert (item["kind"], item["provider_ref"], item["our_amount"], item["provider_amount"], item["currency"]) == (
        "missing_at_provider", "pay_ghost", 700, None, "usd",
    )  # fmt: skip
    assert api.get(f"/api/v1/reconciliation/runs/{off.pk}?kind=fee_mismatch").json()["items"] == []
    # bad input: a clear 4xx
    bad = api.get("/api/v1/reconciliation/runs?status=lost")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_reconciliation_query"
    assert api.get(f"/api/v1/reconciliation/runs/{off.pk}?kind=odd").status_code == 400
    missing = api.get("/api/v1/reconciliation/runs/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_reconciliation_run"
    assert api.get(f"/api/v1/reconciliation/runs/{2**70}").status_code == 404
    # another tenant sees none of it
    assert beta.api().get(f"/api/v1/reconciliation/runs/{off.pk}").status_code == 404
    assert beta.api().get("/api/v1/reconciliation/runs").json()["results"] == []


def _login(fixture, email):
    from tests.conftest import PASSWORD

    client = fixture.client()
    assert client.post("/accounts/login/", {"login": email, "password": PASSWORD}).status_code == 302
    return client


def _user(fixture, email, role):
    from accounts.services import user_create
    from tests.conftest import PASSWORD

    with tenant_context(fixture.tenant):
        user_create(email=email, password=PASSWORD, role=role)
    return _login(fixture, email)


def test_staff_see_runs_and_differences_and_compare_a_day_again(runs):
    fixture, balanced, off = runs
    owner = _login(fixture, fixture.owner_email)
    page = owner.get("/reconciliation/").content.decode()
    assert f'data-run="{balanced.pk}"' in page and f'data-run="{off.pk}"' in page
    assert 'data-provider="sandbox"' in page  # the latest run's figure
    filtered = owner.get("/reconciliation/?status=balanced").content.decode()
    assert f'data-run="{balanced.pk}"' in filtered and f'data-run="{off.pk}"' not in filtered
    assert 'data-testid="no-match"' in owner.get("/reconciliation/?provider=polar").content.decode()
    assert owner.get("/reconciliation/?status=odd").status_code == 200  # an odd filter is ignored
    detail = owner.get(f"/reconciliation/{off.pk}/").content.decode()
    assert 'data-kind="missing_at_provider"' in detail and "pay_ghost" in detail and "$7.00" in detail
    assert 'data-testid="balanced"' in owner.get(f"/reconciliation/{balanced.pk}/").content.decode()
    assert owner.get("/reconciliation/999999/").status_code == 404
    # compare again after the fix: feedback, and the run balances
    with tenant_context(fixture.tenant):
        Payment.objects.filter(provider_payment_id="pay_ghost").update(
            occurred_at=balanced.window_start - dt.timedelta(days=3)
        )
    response = owner.post(f"/reconciliation/{off.pk}/again/", follow=True)
    assert response.status_code == 200 and "balances" in response.content.decode()
    with tenant_context(fixture.tenant):
        off.refresh_from_db()
    assert (off.status, off.difference_count) == ("balanced", 0)


def test_reconciliation_pages_are_for_staff_only(runs, beta):
    from accounts.roles import Role

    fixture, balanced, _off = runs
    support = _user(fixture, "support@alpha.test", Role.SUPPORT)
    assert support.get(f"/reconciliation/{balanced.pk}/").status_code == 200
    assert "Compare again" not in support.get(f"/reconciliation/{balanced.pk}/").content.decode()
    assert support.post(f"/reconciliation/{balanced.pk}/again/").status_code == 403
    customer = _user(fixture, "customer@alpha.test", Role.CUSTOMER)
    assert customer.get("/reconciliation/").status_code == 403
    assert fixture.client().get("/reconciliation/").status_code == 302  # anonymous: log in first
    # another tenant's owner: no such run there
    assert _login(beta, beta.owner_email).get(f"/reconciliation/{balanced.pk}/").status_code == 404


def test_an_empty_reconciliation_page_says_what_will_appear(alpha):
    page = _login(alpha, alpha.owner_email).get("/reconciliation/").content.decode()
    assert 'data-testid="no-runs"' in page and "03:00 UTC" in page


def test_a_provider_without_books_or_account_is_unsupported_not_failed(in_alpha):
    from billing.providers.services import provider_account_upsert

    day = dt.date(2026, 11, 30)
    run = reconciliation_run(provider="polar", day=day)
    assert (run.status, run.error) == ("unsupported", "No polar account is configured for this tenant.")
    provider_account_upsert(
        provider="polar", credentials={"access_token": "polar_oat_x"}, webhook_secret="whsec_x"
    )
    again = reconciliation_run(provider="polar", day=day, force=True)
    assert (again.pk, again.status, again.error) == (
        run.pk,
        "unsupported",
        "polar offers no books to reconcile with.",
    )
    assert reconciliation_run(provider="polar", day=day).pk == run.pk  # finished: answered as it stands


def test_the_same_day_reconciled_concurrently_is_one_run_with_its_items_once(live_tenant):
    from billing.providers.models import SandboxRefund
    from billing.providers.services import provider_account_upsert
    from tests.helpers import committed, run_parallel

    day = dt.date(2026, 11, 30)

    def seed():
        with tenant_context(live_tenant.tenant):
            provider_account_upsert(provider="sandbox")
            SandboxRefund.objects.create(refund_id="re_lost", payment_id="pay_x", amount=500, currency="usd",
                                         created_at=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))  # fmt: skip

    committed(seed)

    def work(i):
        with tenant_context(live_tenant.tenant):
            return reconciliation_run(provider="sandbox", day=day, force=i % 2 == 1).pk

    assert len(set(run_parallel(work, 6))) == 1

    def state():
        with tenant_context(live_tenant.tenant):
            return ReconciliationRun.objects.count(), list(
                ReconciliationItem.objects.values_list("kind", "provider_ref")
            )

    assert committed(state) == (1, [("missing_in_ledger", "re_lost")])
