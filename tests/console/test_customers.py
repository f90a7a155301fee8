"""Customer pages (issue 13 item 4): `/customers/` (search, filter, sort, pages in the database)
and `/customers/<external_id>/` (everything about one customer, actions guarded by role)."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import user_create
from billing.entitlements.models import EntitlementOverride
from billing.entitlements.services import customer_key_create
from billing.invoicing.models import CreditNote
from billing.invoicing.services import (
    LineDraft,
    invoice_draft_create,
    invoice_finalize,
    invoice_payment_apply,
)
from billing.memberships.models import Customer, Membership, MembershipStatus
from billing.memberships.services import customer_upsert, membership_set_tier
from billing.metering.credit_models import CreditLedgerEntry
from billing.metering.ingest import events_ingest
from billing.metering.rollups import rollups_fold
from billing.tiers.models import Price, Tier
from console.customers.selectors import CustomerFilters, customer_search, list_tiers
from tests.conftest import PASSWORD


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _login(fixture, email, role=None):
    if role is not None:
        with tenant_context(fixture.tenant):
            user_create(email=email, password=PASSWORD, role=role)
    client = fixture.client()
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def _subscribe(external_id, price_code, *, status="active", quantity=1, email="", name=""):
    customer, _ = customer_upsert(external_id=external_id, email=email, name=name)
    price = Price.objects.get(code=price_code)
    Membership.objects.create(
        customer=customer,
        tier=price.tier,
        price=price,
        status=status,
        quantity=quantity,
        started_at=timezone.now(),
    )
    return customer


def _rows(**filters):
    return list(customer_search(filters=CustomerFilters(**filters), tiers=list_tiers()))


@pytest.fixture
def shop(ci_catalog):
    """alpha with the CI catalog and five customers: ann (Team x3, active), bob (Pro yearly, past
    due), cat (Team, trialing), dan (canceled Pro), eve (never subscribed); build minutes used this
    month by ann (120) and eve (30)."""
    with tenant_context(ci_catalog.tenant):
        ann = _subscribe("ann", "team-monthly", quantity=3, email="ann@example.com", name="Ann Archer")
        _subscribe("bob", "pro-yearly", status="past_due", email="bob@example.com")
        _subscribe("cat", "team-monthly", status="trialing", name="Cat Cooper")
        dan = _subscribe("dan", "pro-monthly", status="canceled")
        Membership.objects.filter(customer=dan).update(ended_at=timezone.now())
        customer_upsert(external_id="eve", email="eve@other.org")
        now = timezone.now()
        events_ingest(
            events=[
                {"id": "e1", "customer": "ann", "type": "build.finished", "timestamp": now.isoformat(), "properties": {"minutes": 120}},
                {"id": "e2", "customer": "eve", "type": "build.finished", "timestamp": now.isoformat(), "properties": {"minutes": 30}},
            ]
        )  # fmt: skip
        rollups_fold()
        assert ann.pk
    return ci_catalog


# --- the list's selector ---------------------------------------------------------------------------


def test_list_columns_tier_status_mrr_and_usage(shop):
    with tenant_context(shop.tenant):
        from billing.metering.models import Meter

        meter = Meter.objects.get(code="build-minutes")
        rows = {c.external_id: c for c in _rows(meter=meter)}
    assert rows["ann"].tier_code == "team" and rows["ann"].membership_status == "active"
    assert (rows["ann"].mrr, rows["ann"].mrr_currency) == (5700, "usd")  # 3 seats x 19.00
    assert rows["bob"].mrr == 4083  # 490.00 a year / 12, past due still counts (as the overview)
    assert rows["cat"].mrr == 0 and rows["cat"].membership_status == "trialing"
    assert rows["dan"].tier_code == "community" and rows["dan"].membership_status == "canceled"
    assert rows["eve"].tier_code == "community" and rows["eve"].membership_status == "none"
    assert rows["ann"].usage == 120 and rows["eve"].usage == 30 and rows["bob"].usage is None


def test_list_search_filter_and_sort(shop):
    with tenant_context(shop.tenant):
        from billing.metering.models import Meter

        meter = Meter.objects.get(code="build-minutes")
        assert [c.external_id for c in _rows(search="ARCHER")] == ["ann"]
        assert [c.external_id for c in _rows(search="other.org")] == ["eve"]
        assert {c.external_id for c in _rows(tier="team")} == {"ann", "cat"}
        assert {c.external_id for c in _rows(tier="community")} == {"dan", "eve"}
        assert [c.external_id for c in _rows(status="past_due")] == ["bob"]
        assert [c.external_id for c in _rows(status="none")] == ["eve"]
        assert [c.external_id for c in _rows(sort="-mrr")][:2] == ["ann", "bob"]
        assert [c.external_id for c in _rows(sort="-usage", meter=meter)][:2] == ["ann", "eve"]
        assert [c.external_id for c in _rows(sort="usage", meter=meter)][:1] != ["ann"]
        assert [c.external_id for c in _rows(sort="created")] == ["ann", "bob", "cat", "dan", "eve"]
        assert [c.external_id for c in _rows()] == ["eve", "dan", "cat", "bob", "ann"]  # newest first
        assert [c.tier_code for c in _rows(sort="tier")][-1] == "pro"


# --- the list page -------------------------------------------------------------------------------


def test_list_page_for_staff(shop, django_assert_max_num_queries):
    client = _login(shop, shop.owner_email)
    with django_assert_max_num_queries(12):
        response = client.get("/customers/?q=ann&sort=-mrr")
    assert response.status_code == 200
    text = _text(response)
    assert 'href="/customers/ann/"' in text and 'href="/customers/bob/"' not in text
    assert "$57.00" in text and "120" in text


def test_list_query_count_does_not_grow_with_customers(shop, django_assert_max_num_queries):
    client = _login(shop, shop.owner_email)
    with tenant_context(shop.tenant):
        for i in range(60):
            _subscribe(f"bulk{i:03d}", "team-monthly", quantity=2)
    with django_assert_max_num_queries(12):
        response = client.get("/customers/?sort=-usage")
    assert response.status_code == 200
    assert len(re.findall(r'href="/customers/[^"/]+/"', _text(response))) == 25
    assert "Page 1 of 3" in _text(response)


def _reference(filters):
    """The list in one ordered query over every column (what the page shows, row for row)."""
    from django.db.models import F

    from console.customers import selectors

    tiers = list_tiers()
    rows = selectors._matching(selectors.customer_rows(default_tier=selectors.default_tier(tiers)), filters)
    rows = rows.annotate(usage=selectors._usage(filters.meter))
    key, descending = selectors.sort_of(filters)
    column = F(selectors.SORTS[key])
    if key == "usage":
        order = column.desc(nulls_last=True) if descending else column.asc(nulls_first=True)
    else:
        order = column.desc() if descending else column.asc()
    return list(rows.order_by(order, F("id").desc() if descending else F("id").asc()))


def test_list_sorted_by_a_computed_column_pages_row_for_row_as_one_ordered_query(shop):
    with tenant_context(shop.tenant):
        from billing.metering.models import Meter

        meter = Meter.objects.get(code="build-minutes")
        # ties (same MRR, same usage, no usage) so the id breaks them; a page boundary inside them
        for i in range(23):
            _subscribe(f"more{i:02d}", ("team-monthly", "pro-yearly")[i % 2], quantity=1 + i % 3)
        events_ingest(
            events=[
                {"id": f"m{i}", "customer": f"more{i:02d}", "type": "build.finished", "timestamp": timezone.now().isoformat(), "properties": {"minutes": 5 * (i % 3)}}
                for i in range(0, 23, 2)
            ]
        )  # fmt: skip
        rollups_fold()
        for sort in ("-mrr", "mrr", "-usage", "usage", "-tier", "tier", "-status", "status"):
            for extra in ({}, {"tier": "team"}, {"status": "active"}, {"search": "more1"}):
                filters = CustomerFilters(sort=sort, meter=meter, **extra)
                expected = [
                    (c.pk, c.tier_code, c.membership_status, c.mrr, c.usage) for c in _reference(filters)
                ]
                rows = customer_search(filters=filters, tiers=list_tiers())
                for start in (0, 5, 10, 25):
                    got = [
                        (c.pk, c.tier_code, c.membership_status, c.mrr, c.usage)
                        for c in rows[start : start + 10]
                    ]
                    assert got == expected[start : start + 10], (sort, extra, start)
                assert len(rows) == len(expected)


def test_list_counts_customers_alone_and_sorts_by_usage_through_one_join(shop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _login(shop, shop.owner_email)
    for path in ("/customers/", "/customers/?sort=-usage", "/customers/?q=ann"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
        # no filter on tier or status: the count does not join every customer's memberships
        assert len(counts) == 1 and "memberships_membership" not in counts[0], path
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/customers/?sort=-usage").status_code == 200
    rollup_reads = [q["sql"] for q in queries.captured_queries if "metering_rollup_month" in q["sql"]]
    # the order: one join of the month's rollup rows (not a lookup per customer); the usage shown:
    # a lookup for the page's rows only
    assert len(rollup_reads) == 2
    assert "LEFT JOIN metering_rollup_month" in rollup_reads[0] and "LIMIT" in rollup_reads[0]
    assert '"memberships_customer"."id" IN (' in rollup_reads[1]


def test_list_empty_states(ci_catalog):
    client = _login(ci_catalog, ci_catalog.owner_email)
    assert "No customers yet" in _text(client.get("/customers/"))
    assert "No customers match these filters" in _text(client.get("/customers/?q=nobody"))


@pytest.mark.parametrize(
    "query",
    [
        "?page=abc", "?page=-1", "?page=99999999999999999999", "?sort=;drop table", "?sort=-", "?sort=usage&meter=nope",
        "?tier=<script>", "?status=weird", "?q=" + "x" * 500, "?q=%25%27%22", "?meter=&sort=-usage", "?q=a&q=b&tier=team",
    ],
)  # fmt: skip
def test_list_hostile_query_strings_never_500(shop, query):
    client = _login(shop, shop.owner_email)
    response = client.get("/customers/" + query)
    assert response.status_code == 200
    assert "<script>" not in response.content.decode().split("<main>")[-1].replace("&lt;script&gt;", "")


def test_nul_in_query_is_a_400(shop):
    client = _login(shop, shop.owner_email)
    assert client.get("/customers/?q=a%00b").status_code == 400


# --- roles ---------------------------------------------------------------------------------------


def test_anonymous_goes_to_login_and_customers_are_refused(shop):
    response = shop.client().get("/customers/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    customer = _login(shop, "buyer@alpha.test", Role.CUSTOMER)
    assert customer.get("/customers/").status_code == 403
    assert customer.get("/customers/ann/").status_code == 403
    assert customer.post("/customers/ann/credits/", {"amount": "5", "reason": "x"}).status_code == 403
    creator = _login(shop, "maker@alpha.test", Role.CREATOR)
    assert creator.get("/customers/ann/").status_code == 403


def test_support_sees_but_cannot_act(shop):
    support = _login(shop, "help@alpha.test", Role.SUPPORT)
    assert support.get("/customers/").status_code == 200
    page = support.get("/customers/ann/")
    assert page.status_code == 200 and 'data-testid="actions"' not in _text(page)
    for action, body in [
        ("credits", {"amount": "5", "reason": "x"}),
        ("tier", {"tier": "pro"}),
        ("cancel", {"when": "now"}),
        ("refund", {"invoice": "1", "amount": "1"}),
        ("override", {"feature": "sso", "access": "on"}),
    ]:
        assert support.post(f"/customers/ann/{action}/", body).status_code == 403, action
    with tenant_context(shop.tenant):
        assert not CreditLedgerEntry.objects.exists()
        assert Membership.objects.get(customer__external_id="ann").status == "active"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE])
def test_admin_and_finance_may_act(shop, role):
    client = _login(shop, f"{role}@alpha.test", role)
    assert 'data-testid="actions"' in _text(client.get("/customers/ann/"))
    response = client.post("/customers/ann/credits/", {"amount": "5", "reason": "goodwill"})
    assert response.status_code == 302


# --- the customer page ---------------------------------------------------------------------------


def test_customer_page_shows_everything(shop, django_assert_max_num_queries):
    with tenant_context(shop.tenant):
        ann = Customer.objects.get(external_id="ann")
        draft, _ = invoice_draft_create(
            customer=ann, currency="usd", lines=[LineDraft(kind="fee", description="Team", amount=5700)]
        )
        invoice = invoice_finalize(invoice_id=draft.pk)
        customer_key_create(customer=ann, name="laptop")
    client = _login(shop, shop.owner_email)
    with django_assert_max_num_queries(45):
        response = client.get("/customers/ann/")
    assert response.status_code == 200
    text = _text(response)
    assert "Ann Archer" in text and "ann@example.com" in text and 'data-status="active"' in text
    assert "$57.00" in text  # MRR and the invoice
    assert f'href="/invoices/{invoice.pk}/"' in text
    assert "laptop" in text and "sk-alpha-" in text
    assert 'data-meter="build-minutes"' in text and "120" in text
    assert 'data-feature="build_minutes"' in text
    assert "Event sent" in text or "Nothing yet" in text


def test_customer_page_reads_the_entitled_membership_once(shop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _login(shop, shop.owner_email)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/customers/ann/").status_code == 200
    # the usage period's and the entitlement snapshot's, read once for both
    entitled = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "memberships_membership"' in q["sql"]
        and "('trialing', 'active', 'past_due')" in q["sql"]
        and '"creator_id" IS NULL' in q["sql"]
    ]
    assert len(entitled) == 1


def test_unknown_customer_is_404_and_other_tenants_customer_too(shop, beta):
    with tenant_context(beta.tenant):
        customer_upsert(external_id="only-in-beta")
    client = _login(shop, shop.owner_email)
    assert client.get("/customers/nobody/").status_code == 404
    assert client.get("/customers/only-in-beta/").status_code == 404
    assert client.post("/customers/only-in-beta/credits/", {"amount": "5", "reason": "x"}).status_code == 404
    assert client.post("/customers/ann/explode/", {}).status_code == 404
    assert client.get("/customers/" + "x" * 400 + "/").status_code == 404


# --- actions ------------------------------------------------------------------------------------


def test_add_credits_changes_the_balance_once_and_says_so(shop):
    client = _login(shop, shop.owner_email)
    page = client.get("/customers/eve/")
    reference = re.search(r'name="reference" value="([^"]+)"', page.content.decode())[1]
    body = {"amount": "1,500.5", "reason": "goodwill", "reference": reference}
    response = client.post("/customers/eve/credits/", body, follow=True)
    assert response.status_code == 200
    text = _text(response)
    assert "1,500.5 credits added" in text and 'data-testid="credit-balance">1,500.5<' in text
    again = client.post("/customers/eve/credits/", body, follow=True)  # the same form sent twice
    assert "applied once" in _text(again)
    with tenant_context(shop.tenant):
        entries = list(CreditLedgerEntry.objects.filter(customer__external_id="eve"))
    assert [e.amount for e in entries] == [1_500_500_000]


@pytest.mark.parametrize(
    "body, error",
    [
        ({"amount": "abc", "reason": "x"}, "Enter a number of credits"),
        ({"amount": "0", "reason": "x"}, "other than 0"),
        ({"amount": "1e400", "reason": "x"}, "At most"),
        ({"amount": "NaN", "reason": "x"}, "other than 0"),
        ({"amount": "0.0000001", "reason": "x"}, "6 decimal places"),
        ({"amount": "5", "reason": "   "}, "This field is required"),
        ({"amount": "5"}, "This field is required"),
    ],
)
def test_bad_credit_input_is_a_form_error(shop, body, error):
    client = _login(shop, shop.owner_email)
    response = client.post("/customers/eve/credits/", body)
    assert response.status_code == 400
    assert error in _text(response) and "Nothing was changed" in _text(response)
    with tenant_context(shop.tenant):
        assert not CreditLedgerEntry.objects.exists()


def test_taking_back_more_credits_than_held_is_refused_readably(shop):
    client = _login(shop, shop.owner_email)
    response = client.post("/customers/eve/credits/", {"amount": "-5", "reason": "oops"}, follow=True)
    assert response.status_code == 200 and "Nothing was changed" in _text(response)


def test_grant_tier_and_cancel(shop):
    client = _login(shop, shop.owner_email)
    response = client.post("/customers/eve/tier/", {"tier": "enterprise"}, follow=True)
    assert "eve is now on Enterprise" in _text(response)
    with tenant_context(shop.tenant):
        membership = Membership.objects.get(customer__external_id="eve", status="active")
        assert membership.tier.code == "enterprise" and membership.provider == "manual"
    response = client.post("/customers/eve/cancel/", {"when": "now"}, follow=True)
    assert "subscription is canceled" in _text(response)
    with tenant_context(shop.tenant):
        membership.refresh_from_db()
        assert membership.status == MembershipStatus.CANCELED
    response = client.post("/customers/eve/cancel/", {"when": "now"}, follow=True)
    assert "no subscription to cancel" in _text(response)
    assert client.post("/customers/eve/tier/", {"tier": "nope"}).status_code == 400
    assert client.post("/customers/eve/cancel/", {"when": "tomorrow"}).status_code == 400


def test_cancel_at_period_end(shop):
    with tenant_context(shop.tenant):
        eve = Customer.objects.get(external_id="eve")
        membership = membership_set_tier(customer=eve, tier=Tier.objects.get(code="pro"))
        Membership.objects.filter(pk=membership.pk).update(
            current_period_end=timezone.now() + dt.timedelta(days=9)
        )
    client = _login(shop, shop.owner_email)
    response = client.post("/customers/eve/cancel/", {"when": "period_end"}, follow=True)
    assert "ends at the end of the period" in _text(response)
    with tenant_context(shop.tenant):
        membership.refresh_from_db()
        assert membership.status == "active" and membership.cancel_at_period_end


def test_refund_issues_a_credit_note_through_the_service(shop):
    with tenant_context(shop.tenant):
        ann = Customer.objects.get(external_id="ann")
        draft, _ = invoice_draft_create(
            customer=ann, currency="usd", lines=[LineDraft(kind="fee", description="Team", amount=5700)]
        )
        invoice = invoice_finalize(invoice_id=draft.pk)
        invoice_payment_apply(invoice_id=invoice.pk, amount=5700)
    client = _login(shop, shop.owner_email)
    response = client.post(
        "/customers/ann/refund/",
        {"invoice": invoice.pk, "amount": "10", "reason": "other", "memo": "sorry"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Credit note" in _text(response) and "issued" in _text(response)
    with tenant_context(shop.tenant):
        note = CreditNote.objects.get(invoice=invoice)
    assert note.amount == 1000
    too_much = client.post("/customers/ann/refund/", {"invoice": invoice.pk, "amount": "1000"}, follow=True)
    assert "Nothing was refunded" in _text(too_much)
    assert (
        client.post("/customers/ann/refund/", {"invoice": invoice.pk, "amount": "1.234"}).status_code == 400
    )
    assert client.post("/customers/ann/refund/", {"invoice": "999999", "amount": "1"}).status_code == 400
    assert (
        client.post("/customers/eve/refund/", {"invoice": invoice.pk, "amount": "1"}).status_code == 400
    )  # not eve's


def test_override_a_feature_and_remove_it(shop):
    client = _login(shop, shop.owner_email)
    response = client.post(
        "/customers/eve/override/",
        {"feature": "build_minutes", "access": "inherit", "limit": "999999", "note": "deal"},
        follow=True,
    )
    assert "Override saved" in _text(response)
    with tenant_context(shop.tenant):
        override = EntitlementOverride.objects.get(customer__external_id="eve")
        assert override.limit_value == 999_999
    assert "999,999" in _text(client.get("/customers/eve/"))
    assert (
        client.post("/customers/eve/override/", {"feature": "build_minutes", "access": "inherit"}).status_code
        == 400
    )
    assert (
        client.post(
            "/customers/eve/override/", {"feature": "build_minutes", "access": "on", "limit": "-1"}
        ).status_code
        == 400
    )
    assert client.post("/customers/eve/override/", {"feature": "nope", "access": "on"}).status_code == 400
    response = client.post("/customers/eve/override-remove/", {"feature": "build_minutes"}, follow=True)
    assert "Override removed" in _text(response)
    with tenant_context(shop.tenant):
        assert not EntitlementOverride.objects.exists()


# --- a provider's subscription: changed at the provider, its webhook updates the page -------------


@pytest.fixture
def sandbox_shop(ci_catalog, monkeypatch):
    """alpha with the CI catalog, the sandbox provider and customer c1 (as test_sandbox_checkout)."""
    from billing.providers.services import provider_account_upsert
    from tests.billing.test_entitlements import make_customer

    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    make_customer(ci_catalog)
    return ci_catalog


def test_provider_subscription_is_changed_and_canceled_through_the_provider(
    sandbox_shop, django_capture_on_commit_callbacks
):
    from tests.billing.test_sandbox_checkout import membership, pay, start_checkout
    from tests.billing.test_webhooks_in import process_all

    shop = sandbox_shop
    url = start_checkout(shop, price="pro-yearly").json()["url"]
    pay(shop, url, "4242424242424242", django_capture_on_commit_callbacks)
    process_all(shop)
    assert membership(shop).status == "active" and membership(shop).tier.code == "pro"
    client = _login(shop, shop.owner_email)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/customers/c1/tier/", {"tier": "team"}, follow=True)
    assert "c1 moves to Team" in _text(response) and "(through sandbox)" in _text(response)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/customers/c1/cancel/", {"when": "period_end"}, follow=True)
    assert "Cancellation sent to sandbox" in _text(response)
    process_all(shop)
    assert membership(shop).cancel_at_period_end is True and membership(shop).status == "active"


def test_a_paused_provider_subscription_is_not_ended_by_a_tier_grant(sandbox_shop):
    with tenant_context(sandbox_shop.tenant):
        c1 = Customer.objects.get(external_id="c1")
        price = Price.objects.get(code="pro-yearly")
        paused = Membership.objects.create(
            customer=c1, tier=price.tier, price=price, status="paused", provider="sandbox",
            provider_subscription_id="sub_paused", started_at=timezone.now(),
        )  # fmt: skip
    client = _login(sandbox_shop, sandbox_shop.owner_email)
    response = client.post("/customers/c1/tier/", {"tier": "team"}, follow=True)
    assert "Nothing was changed" in _text(response)
    with tenant_context(sandbox_shop.tenant):
        paused.refresh_from_db()
        assert paused.status == "paused" and paused.tier.code == "pro"
