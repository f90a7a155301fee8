"""Invoice pages: the customer's billing page (their invoices, PDFs, the upcoming invoice) and the
staff's invoice list and invoice page (filters, figures, void / mark uncollectible, PDF)."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import user_create
from billing.invoicing.models import Invoice, InvoiceStatus
from billing.invoicing.services import (
    LineDraft,
    invoice_draft_create,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_payment_apply,
)
from billing.memberships.models import Customer
from billing.memberships.services import customer_upsert
from tests.conftest import PASSWORD


def _login(fixture, email) -> Client:
    client = fixture.client()
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def _user(fixture, email, role) -> Client:
    with tenant_context(fixture.tenant):
        user_create(email=email, password=PASSWORD, role=role)
    return _login(fixture, email)


def _invoice(customer, *amounts, currency="usd", finalize=True, lines=None, **extra) -> Invoice:
    lines = lines or [
        LineDraft(kind="fee", description=f"Team (monthly) {i}", amount=a) for i, a in enumerate(amounts)
    ]
    invoice, _ = invoice_draft_create(customer=customer, currency=currency, lines=lines, **extra)
    return invoice_finalize(invoice_id=invoice.pk) if finalize else invoice


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- the customer's billing page ----------------------------------------------------------------


@pytest.fixture
def customer_client(alpha):
    """A signed-up customer of alpha (their Customer is created at sign-up) and their client."""
    client = alpha.client()
    response = client.post(
        "/accounts/signup/", {"email": "buyer@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    with tenant_context(alpha.tenant):
        customer = Customer.objects.get(email="buyer@alpha.test")
    return client, customer


def test_customer_sees_their_invoices_formatted_with_pdf_links(alpha, customer_client):
    client, customer = customer_client
    with tenant_context(alpha.tenant):
        start = timezone.make_aware(dt.datetime(2026, 1, 1))
        paid = _invoice(customer, 123_456, period_start=start, period_end=start + dt.timedelta(days=31))
        invoice_payment_apply(invoice_id=paid.pk, amount=123_456)
        due = _invoice(customer, 1900, 100)
        won = _invoice(customer, 3_900_000, currency="krw")
        voided = _invoice(customer, 500)
        from billing.invoicing.services import invoice_void

        invoice_void(invoice_id=voided.pk)
        draft = _invoice(customer, 777, finalize=False)
        other, _ = customer_upsert(external_id="someone-else")
        theirs = _invoice(other, 4242)

    page = _text(client.get("/account/billing/"))
    assert "<h1>Billing</h1>" in page
    rows = dict(re.findall(r'<tr data-invoice="([^"]+)">(.*?)</tr>', page))
    assert set(rows) == {paid.number, due.number, won.number, voided.number}  # no draft, no one else's
    assert theirs.number not in page and str(draft.pk) not in rows
    assert "$1,234.56" in rows[paid.number] and 'data-status="paid">Paid<' in rows[paid.number]
    assert "Jan 1 – Feb 1, 2026" in rows[paid.number]
    assert 'data-status="open">Open<' in rows[due.number] and rows[due.number].count("$20.00") == 2  # due
    assert "₩3,900,000" in rows[won.number]
    assert 'data-status="void">Void<' in rows[voided.number]
    assert f'href="/account/billing/invoices/{due.pk}/pdf/"' in rows[due.number]
    # linked from the navigation and the plan page
    assert 'href="/account/billing/"' in _text(client.get("/account/plan/"))


def test_customer_sees_their_own_discount_and_no_one_elses(alpha, customer_client):
    from billing.discounts.services import coupon_create
    from billing.memberships.models import CouponRedemption
    from billing.memberships.services import customer_discount_apply, customer_discount_remove

    client, customer = customer_client
    assert 'data-testid="discount"' not in _text(client.get("/account/billing/"))
    with tenant_context(alpha.tenant):
        coupon_create(code="TEAM20", percent_off=Decimal(20), duration="repeating", duration_in_periods=3)
        coupon_create(code="FRIEND", percent_off=Decimal(50), duration="forever")
        other, _ = customer_upsert(external_id="someone-else")
        customer_discount_apply(customer=other, coupon_code="FRIEND")
    assert "FRIEND" not in _text(client.get("/account/billing/"))
    with tenant_context(alpha.tenant):
        customer_discount_apply(customer=customer, coupon_code="TEAM20")
    page = _text(client.get("/account/billing/"))
    found = re.search(r'data-testid="discount">(.*?)</p>', page)
    assert found and found.group(1) == "Your discount: <code>TEAM20</code>, 20% off, for 3 invoices."
    with tenant_context(alpha.tenant):  # one of its invoices used: what is left is said
        CouponRedemption.objects.filter(customer=customer).update(periods_applied=1)
    assert "for 3 invoices · 2 invoices left." in _text(client.get("/account/billing/"))
    with tenant_context(alpha.tenant):
        customer_discount_remove(customer=customer)
    assert 'data-testid="discount"' not in _text(client.get("/account/billing/"))


def test_customer_downloads_their_pdf_and_no_one_elses(alpha, beta, customer_client):
    client, customer = customer_client
    with tenant_context(alpha.tenant):
        mine = _invoice(customer, 1900)
        draft = _invoice(customer, 5, finalize=False)
        other, _ = customer_upsert(external_id="someone-else")
        theirs = _invoice(other, 4242)

    response = client.get(f"/account/billing/invoices/{mine.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert (
        response.content.startswith(b"%PDF")
        and f'filename="{mine.number}.pdf"' in response["Content-Disposition"]
    )
    assert client.get(f"/account/billing/invoices/{theirs.pk}/pdf/").status_code == 404
    assert client.get(f"/account/billing/invoices/{draft.pk}/pdf/").status_code == 404
    assert client.get("/account/billing/invoices/99999999999999999999/pdf/").status_code == 404
    assert client.post(f"/account/billing/invoices/{mine.pk}/pdf/").status_code == 405
    anonymous = alpha.client().get(f"/account/billing/invoices/{mine.pk}/pdf/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    # the same session cookie on another tenant's host is nobody there
    cross = Client(HTTP_HOST=beta.host)
    cross.cookies = client.cookies
    response = cross.get(f"/account/billing/invoices/{mine.pk}/pdf/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_customer_empty_states_say_what_happens_next(customer_client):
    client, _ = customer_client
    page = _text(client.get("/account/billing/"))
    assert 'data-testid="no-invoices"' in page and "Your first invoice appears here" in page
    assert 'data-testid="no-upcoming"' in page and 'href="/pricing/"' in page


def test_customer_sees_the_upcoming_invoice(alpha, customer_client):
    from billing.memberships.models import Membership
    from billing.metering.ingest import events_ingest
    from billing.tiers.catalog import catalog_import
    from billing.tiers.models import Price
    from tests.billing.test_usage_prices import USAGE

    client, customer = customer_client
    now = timezone.now()
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        price = Price.objects.get(code="pro-monthly")
        end = now + dt.timedelta(days=20)
        Membership.objects.create(
            customer=customer, tier=price.tier, price=price, status="active", quantity=1,
            started_at=now - dt.timedelta(days=10), current_period_start=now - dt.timedelta(days=10),
            current_period_end=end,
        )  # fmt: skip
        stamp = (now - dt.timedelta(hours=1)).isoformat()
        events_ingest(
            events=[
                {"id": f"t{i}", "customer": customer.external_id, "type": "llm.call", "timestamp": stamp,
                 "properties": {"tokens": n}}
                for i, n in enumerate([12_000, 501])
            ]
        )  # fmt: skip

    page = _text(client.get("/account/billing/"))
    upcoming = page.split('data-testid="upcoming"')[1].split("</section>")[0]
    # 12,501 tokens: 1,000 free + 9,000 × 2 + 2,501 × 0.25 + 500 = 19,125.25 → $191.25; fee $29.00
    assert 'data-testid="upcoming-total">$220.25<' in upcoming
    # a <time> the browser shows in the viewer's format; the server's text until then
    assert f'data-format="date">{end:%b} {end.day}, {end.year}</time></strong>' in upcoming
    assert "Tokens: 12,501<" in upcoming and "$191.25" in upcoming and "$29.00" in upcoming
    assert "Tier breakdown (3 tiers)" in upcoming and "10,001 and up" in upcoming
    assert "$0.0025" in upcoming  # a quarter of a cent per token, as a unit price


def test_billing_page_needs_login(alpha):
    response = alpha.client().get("/account/billing/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- staff: the list ----------------------------------------------------------------------------


@pytest.fixture
def book(alpha):
    """alpha's invoices: ada (usd: open, paid, a draft), bob (krw: open, uncollectible), cy (usd, old)."""
    with tenant_context(alpha.tenant):
        ada, _ = customer_upsert(external_id="ada", email="ada@example.com", name="Ada Lovelace")
        bob, _ = customer_upsert(external_id="bob", email="bob@example.com", name="Bob")
        cy, _ = customer_upsert(external_id="cy")
        invoices = {
            "ada_open": _invoice(ada, 150_000),
            "ada_paid": _invoice(ada, 2900),
            "ada_draft": _invoice(ada, 100, finalize=False),
            "bob_open": _invoice(bob, 39_000, currency="krw"),
            "bob_lost": _invoice(bob, 1_000_000, currency="krw"),
            "cy_old": _invoice(cy, 1000),
        }
        invoice_payment_apply(invoice_id=invoices["ada_paid"].pk, amount=2900)
        invoice_mark_uncollectible(invoice_id=invoices["bob_lost"].pk)
        long_ago = timezone.make_aware(dt.datetime(2025, 3, 15, 12))
        Invoice.objects.filter(pk=invoices["cy_old"].pk).update(finalized_at=long_ago)
    return {key: invoice.pk for key, invoice in invoices.items()}


def _listed(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr data-invoice="(\d+)">', response.content.decode())}


def test_only_staff_see_the_invoice_pages(alpha, book):
    owner = _login(alpha, alpha.owner_email)
    assert owner.get("/invoices/").status_code == 200
    assert owner.get(f"/invoices/{book['ada_open']}/").status_code == 200
    support = _user(alpha, "support@alpha.test", Role.SUPPORT)
    assert support.get("/invoices/").status_code == 200
    customer = _user(alpha, "c@alpha.test", Role.CUSTOMER)
    creator = _user(alpha, "creator@alpha.test", Role.CREATOR)
    for client in (customer, creator):
        assert client.get("/invoices/").status_code == 403
        assert client.get(f"/invoices/{book['ada_open']}/").status_code == 403
        assert client.get(f"/invoices/{book['ada_open']}/pdf/").status_code == 403
    anonymous = alpha.client().get("/invoices/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert 'href="/invoices/"' in _text(owner.get("/dashboard/"))
    assert 'href="/invoices/"' not in _text(customer.get("/dashboard/"))


def test_list_filters_by_status_customer_and_dates(alpha, book):
    client = _login(alpha, alpha.owner_email)

    def listed(**query) -> set[str]:
        ids = _listed(client.get("/invoices/", query))
        return {key for key, pk in book.items() if pk in ids}

    assert listed() == set(book)
    assert listed(status="open") == {"ada_open", "bob_open", "cy_old"}
    assert listed(status="uncollectible") == {"bob_lost"}
    assert listed(q="LOVELACE") == {"ada_open", "ada_paid", "ada_draft"}
    assert listed(q="bob@example") == {"bob_open", "bob_lost"}
    with tenant_context(alpha.tenant):
        number = Invoice.objects.get(pk=book["bob_lost"]).number
    assert listed(q=number) == {"bob_lost"}
    assert listed(issued_to="2025-03-15") == {"cy_old"}
    assert listed(issued_from="2025-03-16") == set(book) - {"cy_old"}
    assert listed(issued_from="2025-03-01", issued_to="2025-03-31", status="open") == {"cy_old"}
    # a bad date is said, the other filters still apply
    response = client.get("/invoices/", {"issued_from": "yesterday", "status": "paid"})
    assert response.status_code == 200 and "Enter a valid date" in _text(response)
    assert _listed(response) == {book["ada_paid"]}
    backwards = _text(client.get("/invoices/", {"issued_from": "2026-02-01", "issued_to": "2026-01-01"}))
    assert "The end date is before the start date" in backwards
    assert client.get("/invoices/", {"status": "sideways"}).status_code == 200
    nothing = _text(client.get("/invoices/", {"q": "nobody-at-all"}))
    assert 'data-testid="no-match"' in nothing and "Show all invoices" in nothing


def test_list_counts_and_totals_per_currency(alpha, book):
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get("/invoices/"))
    tabs = dict(re.findall(r'data-tab="(\w+)">[^<]+<span class="count">(\d+)</span>', page))
    assert tabs == {"all": "6", "draft": "1", "open": "3", "paid": "1", "void": "0", "uncollectible": "1"}
    usd = page.split('data-currency="usd"')[1].split("</div>")[0]
    krw = page.split('data-currency="krw"')[1].split("</div>")[0]
    # usd invoiced: 1,500.00 + 29.00 + 10.00 (cy; the draft is not invoiced yet); due: the open ones
    assert "4 invoices in USD" in usd and "$1,539.00 <small" in usd
    assert "Paid $29.00" in usd and "Due $1,510.00" in usd
    # krw: 39,000 open + 1,000,000 uncollectible (invoiced, not due: collection stopped)
    assert "2 invoices in KRW" in krw and "₩1,039,000 <small" in krw and "Due ₩39,000" in krw
    filtered = _text(client.get("/invoices/", {"q": "bob", "status": "open"}))
    assert 'data-currency="usd"' not in filtered and "1 invoice in KRW" in filtered
    tabs = dict(re.findall(r'data-tab="(\w+)">[^<]+<span class="count">(\d+)</span>', filtered))
    assert tabs["all"] == "2" and tabs["open"] == "1"  # counts follow the search, not the status
    with tenant_context(alpha.tenant):
        from billing.invoicing.services import invoice_void

        invoice_void(invoice_id=book["ada_open"])
    usd = _text(client.get("/invoices/")).split('data-currency="usd"')[1].split("</div>")[0]
    assert "4 invoices in USD" in usd and "$39.00 <small" in usd and "Due $10.00" in usd  # void: not owed


def test_list_paginates_in_the_database(alpha):
    with tenant_context(alpha.tenant):
        ada, _ = customer_upsert(external_id="ada")
        ids = [_invoice(ada, 100 + i, finalize=False).pk for i in range(30)]
    client = _login(alpha, alpha.owner_email)
    first = client.get("/invoices/", {"q": "ada"})
    assert _listed(first) == set(ids[-25:]) and "Showing 1–25 of 30 invoices" in _text(first)
    assert 'href="?q=ada&amp;page=2"' in first.content.decode()
    second = client.get("/invoices/", {"q": "ada", "page": 2})
    assert _listed(second) == set(ids[:5]) and "Page 2 of 2" in _text(second)
    assert _listed(client.get("/invoices/", {"page": "9999"})) == set(ids[:5])  # past the end: the last


def _order(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-invoice="(\d+)">', response.content.decode())]


def _keys(book, response) -> list[str]:
    names = {pk: key for key, pk in book.items()}
    return [names[pk] for pk in _order(response)]


ISSUED = ["cy_old", "ada_open", "ada_paid", "ada_draft", "bob_open", "bob_lost"]
SORTED = {  # ascending; ties in id order; descending is the exact reverse
    "issued": ISSUED,
    # usd and krw compared as numbers
    "total": ["ada_draft", "cy_old", "ada_paid", "bob_open", "ada_open", "bob_lost"],
    # nothing due (paid, draft, uncollectible) counts 0
    "due": ["ada_paid", "ada_draft", "bob_lost", "cy_old", "bob_open", "ada_open"],
    "status": ["ada_draft", "ada_open", "bob_open", "cy_old", "ada_paid", "bob_lost"],
    # as the list names them: Ada Lovelace, Bob, then cy (no name or email: the id)
    "customer": ["ada_open", "ada_paid", "ada_draft", "bob_open", "bob_lost", "cy_old"],
}


@pytest.mark.parametrize("key", [*SORTED, "number"])
def test_list_sorts_by_each_column_both_ways(alpha, book, key):
    with tenant_context(alpha.tenant):
        numbers = dict(Invoice.objects.values_list("pk", "number"))
    names = {pk: name for name, pk in book.items()}
    expected = SORTED.get(key) or [
        names[pk] for pk in sorted(book.values(), key=lambda pk: (numbers[pk], pk))
    ]
    if key == "number":
        assert expected[0] == "ada_draft"  # a draft has no number yet
    client = _login(alpha, alpha.owner_email)
    assert _keys(book, client.get("/invoices/", {"sort": key})) == expected
    descending = client.get("/invoices/", {"sort": f"-{key}"})
    assert _keys(book, descending) == expected[::-1]
    head = _text(descending).split("<thead>")[1].split("</thead>")[0]
    assert 'aria-sort="descending"' in head and f'href="?sort={key}"' in head  # clicking again flips it


def test_list_is_newest_issued_first_and_a_bogus_sort_falls_back(alpha, book):
    client = _login(alpha, alpha.owner_email)
    newest = ISSUED[::-1]
    assert _keys(book, client.get("/invoices/")) == newest
    for bogus in ("bogus", "-", "--total", "customer__password", "issued_at", "-id", "total;drop", "\u00e9"):
        response = client.get("/invoices/", {"sort": bogus, "status": ""})
        assert response.status_code == 200, bogus
        assert _keys(book, response) == newest, bogus
        assert '<option value="-issued" selected>Issued, newest first</option>' in _text(response)
    assert _keys(book, client.get("/invoices/", {"sort": ["total", "-total"]})) == SORTED["total"][::-1]


@pytest.fixture
def many(alpha):
    """36 invoices of zed's (totals 100, 107, 114, ... in a shuffled order; every sixth a draft), and
    ada's one."""
    with tenant_context(alpha.tenant):
        zed, _ = customer_upsert(external_id="zed", name="Zed")
        ada, _ = customer_upsert(external_id="ada", name="Ada")
        totals = [100 + 7 * ((i * 13) % 36) for i in range(36)]
        invoices = [_invoice(zed, total, finalize=i % 6 != 0) for i, total in enumerate(totals)]
        _invoice(ada, 5)
    return invoices


def test_list_sort_keeps_filters_and_pages(alpha, many):
    client = _login(alpha, alpha.owner_email)
    by_total = sorted(many, key=lambda invoice: (invoice.total, invoice.pk))
    # a search, then page 2 of the same order
    first = client.get("/invoices/", {"q": "zed", "sort": "total"})
    assert _order(first) == [invoice.pk for invoice in by_total[:25]] and "Page 1 of 2" in _text(first)
    html = first.content.decode()
    assert 'href="?q=zed&amp;sort=total&amp;page=2" rel="next"' in html
    assert '<option value="total" selected>Total, lowest first</option>' in html
    assert 'href="?q=zed&amp;sort=total&amp;status=open"' in html  # the status tabs keep the sort
    assert 'href="?q=zed&amp;sort=-total"' in html  # the header flips it and keeps the search
    second = client.get("/invoices/", {"q": "zed", "sort": "total", "page": 2})
    assert _order(second) == [invoice.pk for invoice in by_total[25:]]
    # a status and a search, highest first, across pages
    drafts = [invoice for invoice in by_total if invoice.status == InvoiceStatus.DRAFT][::-1]
    opened = [i for i in by_total if i.status == InvoiceStatus.OPEN][::-1]
    assert len(opened) > 25
    page = client.get("/invoices/", {"q": "zed", "status": "open", "sort": "-total", "page": 2})
    assert _order(page) == [invoice.pk for invoice in opened[25:]]
    assert _order(client.get("/invoices/", {"status": "draft", "sort": "-total"})) == [i.pk for i in drafts]
    # the issued dates bound the list whatever its order
    today = timezone.localdate().isoformat()
    dated = client.get("/invoices/", {"q": "zed", "issued_from": today, "sort": "-due", "page": 2})
    by_due = sorted(many, key=lambda invoice: (invoice.amount_due, invoice.pk), reverse=True)
    assert _order(dated) == [invoice.pk for invoice in by_due[25:]]


def test_list_query_count_does_not_grow_with_invoices(alpha, book):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _login(alpha, alpha.owner_email)

    def queries(sort: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/invoices/", {"sort": sort}).status_code == 200
        return len(captured.captured_queries)

    few = {sort: queries(sort) for sort in ("-issued", "customer", "-due", "number")}
    with tenant_context(alpha.tenant):
        for i in range(40):
            customer, _ = customer_upsert(external_id=f"bulk{i}", name=f"Bulk {i}")
            _invoice(customer, 100 + i)
    assert {sort: queries(sort) for sort in few} == few


def test_list_orders_walk_an_index(alpha):
    """Each order is an index on (key, id): the planner can read a page of 25 without sorting every
    invoice (enable_sort off makes a missing index show as a Sort node). By customer it walks the
    customers' index and sorts only each name's invoices by id (an incremental sort)."""
    from django.db import connection

    from billing.invoicing.pages.selectors import INVOICE_SORTS, InvoiceFilters, invoice_search
    from kernel.tables import sort_rows

    with tenant_context(alpha.tenant):
        for key, order in INVOICE_SORTS.items():
            for descending in (False, True):
                rows = sort_rows(invoice_search(filters=InvoiceFilters()), order, descending=descending)
                sql, params = rows[:25].query.sql_with_params()
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_sort = off")
                    cursor.execute("SET LOCAL enable_seqscan = off")
                    cursor.execute(f"EXPLAIN {sql}", params)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                if key == "customer":
                    assert "using memberships_customer_label" in plan and "Presorted Key" in plan, plan
                    plan = plan.replace("Incremental Sort", "")
                assert "Sort" not in plan.replace("Sort Key", ""), (key, descending, plan)


def test_list_empty_state(alpha):
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get("/invoices/"))
    assert 'data-testid="no-invoices"' in page and "billing periods close" in page


# --- staff: one invoice -------------------------------------------------------------------------


def test_invoice_page_shows_header_lines_breakdown_and_totals(alpha, book):
    with tenant_context(alpha.tenant):
        ada = Customer.objects.get(external_id="ada")
        breakdown = [
            {"first": "1", "last": "1000", "quantity": "1000", "unit_amount": "0", "flat_amount": 0, "amount": "0"},
            {"first": "1001", "last": "10000", "quantity": "9000", "unit_amount": "2", "flat_amount": 0, "amount": "18000"},
            {"first": "10001", "last": None, "quantity": "2501", "unit_amount": "0.25", "flat_amount": 500, "amount": "1125.25"},
        ]  # fmt: skip
        usage = LineDraft(
            kind="usage", description="Tokens: 12,501 tokens", amount=19_125, quantity=Decimal(12501),
            unit_amount=Decimal(0), meter="tokens", breakdown=breakdown,
        )  # fmt: skip
        fee = LineDraft(kind="fee", description="Pro (monthly)", amount=2900, unit_amount=Decimal(2900))
        invoice = _invoice(ada, lines=[usage, fee])
        invoice_payment_apply(invoice_id=invoice.pk, amount=1025)
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get(f"/invoices/{invoice.pk}/"))
    assert f"<h1>Invoice {invoice.number} " in page and 'data-status="open">Open<' in page
    assert "Ada Lovelace" in page and "ada@example.com" in page
    assert "Tokens: 12,501 tokens" in page and "$191.25" in page and "Tiered" in page
    assert "Tier breakdown (3 tiers)" in page and "1,001 – 10,000" in page and "$0.0025" in page
    breakdown = re.sub(r"<[^>]+>", "", page.split("Tier breakdown")[1].split("</details>")[0])
    assert "2,501 × $0.0025 + $5.00 flat" in breakdown and "$11.2525" in breakdown  # exact, before rounding
    assert "$29.00" in page and "$220.25" in page and "−$10.25" in page
    assert 'data-testid="amount-due">$210.00<' in page
    assert "Our billing engine, charging the saved payment method" in page
    assert f'href="/invoices/{invoice.pk}/pdf/"' in page
    assert 'data-action="void"' not in page  # money was paid on it
    assert 'data-action="mark-uncollectible"' in page


def test_invoice_of_another_tenant_or_unknown_is_404(alpha, beta, book):
    other = _login(beta, beta.owner_email)
    for path in (f"/invoices/{book['ada_open']}/", f"/invoices/{book['ada_open']}/pdf/"):
        assert other.get(path).status_code == 404
    assert other.post(f"/invoices/{book['ada_open']}/void/").status_code == 404
    owner = _login(alpha, alpha.owner_email)
    assert owner.get("/invoices/999999999/").status_code == 404
    assert owner.get("/invoices/99999999999999999999/").status_code == 404
    with tenant_context(alpha.tenant):
        assert Invoice.objects.get(pk=book["ada_open"]).status == InvoiceStatus.OPEN


def test_staff_pdf(alpha, book):
    response = _login(alpha, alpha.owner_email).get(f"/invoices/{book['bob_open']}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and "attachment" in response["Content-Disposition"]


# --- staff: actions ---------------------------------------------------------------------------


def _status(alpha, pk) -> str:
    with tenant_context(alpha.tenant):
        return Invoice.objects.get(pk=pk).status


def test_void_and_mark_uncollectible_change_the_invoice_and_say_so(alpha, book):
    client = _login(alpha, alpha.owner_email)
    response = client.post(f"/invoices/{book['ada_open']}/mark-uncollectible/", follow=True)
    assert _status(alpha, book["ada_open"]) == "uncollectible"
    assert re.search(r'<li class="success">Invoice ALPHA-\d+ is now uncollectible', _text(response))
    response = client.post(f"/invoices/{book['ada_open']}/void/", follow=True)
    assert _status(alpha, book["ada_open"]) == "void"
    assert response.redirect_chain[-1][0] == f"/invoices/{book['ada_open']}/"
    page = _text(response)
    assert re.search(r'<li class="success">Invoice ALPHA-\d+ is now void', page)
    assert 'data-action="void"' not in page and 'data-status="void">Void<' in page
    again = _text(client.post(f"/invoices/{book['ada_open']}/void/", follow=True))
    assert "was already void" in again


def test_bad_transitions_show_a_readable_error_and_change_nothing(alpha, book):
    client = _login(alpha, alpha.owner_email)
    page = _text(client.post(f"/invoices/{book['ada_paid']}/void/", follow=True))
    assert re.search(
        r'<li class="error">Invoice ALPHA-\d+ is paid: it cannot become void \(money was paid on it: issue a credit note\)\.',
        page,
    )
    assert _status(alpha, book["ada_paid"]) == "paid"
    page = _text(client.post(f"/invoices/{book['ada_draft']}/mark-uncollectible/", follow=True))
    assert '<li class="error">' in page and "is draft: it cannot become uncollectible" in page
    assert _status(alpha, book["ada_draft"]) == "draft"
    assert client.post(f"/invoices/{book['ada_open']}/refund-everything/").status_code == 404


def test_actions_are_post_only_csrf_checked_and_for_billing_roles(alpha, book):
    owner = _login(alpha, alpha.owner_email)
    assert owner.get(f"/invoices/{book['ada_open']}/void/").status_code == 405
    guarded = alpha.client(enforce_csrf_checks=True)  # the owner's session, no CSRF token
    guarded.cookies = owner.cookies
    assert guarded.get("/invoices/").status_code == 200
    assert guarded.post(f"/invoices/{book['ada_open']}/void/").status_code == 403
    assert _status(alpha, book["ada_open"]) == "open"
    support = _user(alpha, "support@alpha.test", Role.SUPPORT)
    assert support.post(f"/invoices/{book['ada_open']}/void/").status_code == 403
    assert 'data-action="void"' not in _text(support.get(f"/invoices/{book['ada_open']}/"))
    customer = _user(alpha, "c@alpha.test", Role.CUSTOMER)
    assert customer.post(f"/invoices/{book['ada_open']}/mark-uncollectible/").status_code == 403
    assert _status(alpha, book["ada_open"]) == "open"
    finance = _user(alpha, "finance@alpha.test", Role.FINANCE)
    assert finance.post(f"/invoices/{book['ada_open']}/void/").status_code == 302
    assert _status(alpha, book["ada_open"]) == "void"


def test_invoice_page_lists_payment_attempts_and_activity(alpha, book):
    from billing.invoicing.services import engine_invoice_ref
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState

    with tenant_context(alpha.tenant):
        invoice = Invoice.objects.get(pk=book["ada_open"])
        at = timezone.now()  # after the invoice was issued, before it is paid
        for kind, payment_id in (("payment.failed", "pay_declined"), ("payment.succeeded", "pay_ok")):
            payment_record(
                provider="sandbox", event_type=kind, occurred_at=at, event_id=f"evt_{payment_id}",
                payment=PaymentState(payment_id=payment_id, amount=150_000, currency="usd", customer="ada",
                                     invoice=engine_invoice_ref(invoice)),
            )  # fmt: skip
            at += dt.timedelta(milliseconds=1)
    page = _text(_login(alpha, alpha.owner_email).get(f"/invoices/{invoice.pk}/"))
    payments = page.split('data-testid="payments"')[1].split("</section>")[0]
    declined = payments.split('data-payment="pay_declined"')[1].split("</tr>")[0]
    ok = payments.split('data-payment="pay_ok"')[1].split("</tr>")[0]
    assert ">Failed<" in declined and "$1,500.00" in declined and declined.endswith("–</td> ")
    assert "Charge" in ok and ok.count("$1,500.00") == 2  # amount, applied
    assert 'data-status="paid">Paid<' in page and 'data-testid="amount-due">$0.00<' in page
    activity = re.findall(r'<span class="when"><time [^>]+>[^<]+</time></span> ([^<]+)</li>', page)
    assert activity[:3] == [
        "Paid in full",
        "Charge of $1,500.00 (sandbox)",
        "A charge of $1,500.00 failed (sandbox)",
    ]


# --- staff: credit notes and refunds --------------------------------------------------------------


def _notes(alpha, pk) -> list[tuple]:
    from billing.invoicing.models import CreditNote

    with tenant_context(alpha.tenant):
        notes = CreditNote.objects.filter(invoice_id=pk).order_by("id")
        return [(n.amount, n.pre_payment_amount, n.refund_amount, n.credit_amount, n.status) for n in notes]


def test_a_credit_note_lowers_what_is_due_and_is_listed(alpha, book):
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get(f"/invoices/{book['ada_open']}/"))
    assert 'data-testid="credit-form"' in page and "Up to <strong>$1,500.00</strong>" in page
    response = client.post(
        f"/invoices/{book['ada_open']}/credit-notes/",
        {"amount": "1,000.50", "reason": "order_change", "memo": "two seats fewer"},
        follow=True,
    )
    page = _text(response)
    assert re.search(
        r'<li class="success">Credit note ALPHA-\d+-CN1 issued: \$1,000.50 off what is due\.', page
    )
    assert _notes(alpha, book["ada_open"]) == [(100_050, 100_050, 0, 0, "issued")]
    row = page.split('data-credit-note="')[1].split("</tr>")[0]
    assert "Order change" in row and "two seats fewer" in row and "−$1,000.50" in row
    assert 'data-testid="amount-due">$499.50<' in page and "Up to <strong>$499.50</strong>" in page
    # more than is due: refused in the invoice's money, nothing issued
    page = _text(client.post(f"/invoices/{book['ada_open']}/credit-notes/", {"amount": "500"}, follow=True))
    assert (
        "The credit note was not issued. At most $499.50 can be credited: that is what is still due." in page
    )
    assert len(_notes(alpha, book["ada_open"])) == 1
    # the rest settles the invoice; then nothing more can be credited before payment
    client.post(f"/invoices/{book['ada_open']}/credit-notes/", {"amount": "499.50", "reason": "other"})
    assert _status(alpha, book["ada_open"]) == "paid"
    assert 'data-testid="credit-form"' not in _text(client.get(f"/invoices/{book['ada_open']}/"))


@pytest.mark.parametrize("amount", ["12.345", "-5", "0", "1e3", "", "ten"])
def test_a_bad_credit_amount_is_shown_on_the_form(alpha, book, amount):
    client = _login(alpha, alpha.owner_email)
    response = client.post(
        f"/invoices/{book['ada_open']}/credit-notes/", {"amount": amount, "reason": "other"}
    )
    page = _text(response)
    assert response.status_code == 400 and "The credit note was not issued: check the form below." in page
    assert re.search(r"Amount: (Enter an amount|USD has 2 decimals|This field is required)", page)
    assert _notes(alpha, book["ada_open"]) == []


def test_a_paid_invoice_is_refunded_through_the_provider_that_collected(
    alpha, book, monkeypatch, django_capture_on_commit_callbacks
):
    from billing.invoicing.services import engine_invoice_ref
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState
    from billing.providers.services import provider_account_upsert

    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
        invoice = Invoice.objects.get(pk=book["bob_open"])  # ₩39,000
        payment_record(
            provider="sandbox", event_type="payment.succeeded", occurred_at=timezone.now(), event_id="evt_1",
            payment=PaymentState(payment_id="pay_1", amount=39_000, currency="krw", customer="bob",
                                 invoice=engine_invoice_ref(invoice)),
        )  # fmt: skip
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get(f"/invoices/{invoice.pk}/"))
    assert "Up to <strong>₩39,000</strong> can be given back" in page and 'name="refund"' in page
    assert _text(
        client.post(f"/invoices/{invoice.pk}/credit-notes/", {"amount": "1.5", "refund": "on"})
    ).count("KRW has no decimals")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/invoices/{invoice.pk}/credit-notes/",
            {"amount": "₩10,000", "reason": "duplicate", "refund": "on"},
            follow=True,
        )
    page = _text(response)
    assert re.search(r"Credit note ALPHA-\d+-CN1 issued: ₩10,000 refunded through sandbox\.", page)
    assert _notes(alpha, invoice.pk) == [(10_000, 0, 10_000, 0, "refunded")]
    assert "₩10,000 refund via sandbox" in page and ">Refunded<" in page
    assert "Up to <strong>₩29,000</strong>" in page
    # out of band: no money moves
    page = _text(client.post(f"/invoices/{invoice.pk}/credit-notes/", {"amount": "9000"}, follow=True))
    assert "₩9,000 credited out of band (no money moved)" in page
    assert _notes(alpha, invoice.pk)[1] == (9_000, 0, 0, 9_000, "issued")


def test_a_refund_of_an_invoice_paid_outside_any_provider_says_what_to_do(alpha, book):
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get(f"/invoices/{book['ada_paid']}/"))
    assert 'name="refund"' not in page and "credited out of band" in page  # no provider payment
    page = _text(
        client.post(
            f"/invoices/{book['ada_paid']}/credit-notes/", {"amount": "5", "refund": "on"}, follow=True
        )
    )
    assert "nothing to refund: untick refund to credit it out of band" in page
    assert _notes(alpha, book["ada_paid"]) == []
    page = _text(client.post(f"/invoices/{book['ada_paid']}/credit-notes/", {"amount": "30"}, follow=True))
    assert "At most $29.00 can be given back" in page and _notes(alpha, book["ada_paid"]) == []


def test_credit_notes_are_for_billing_roles_by_post(alpha, book):
    path = f"/invoices/{book['ada_open']}/credit-notes/"
    assert _login(alpha, alpha.owner_email).get(path).status_code == 405
    support = _user(alpha, "support@alpha.test", Role.SUPPORT)
    assert 'data-testid="credit-form"' not in _text(support.get(f"/invoices/{book['ada_open']}/"))
    assert support.post(path, {"amount": "1"}).status_code == 403
    assert _user(alpha, "c@alpha.test", Role.CUSTOMER).post(path, {"amount": "1"}).status_code == 403
    assert _notes(alpha, book["ada_open"]) == []
    draft = _text(
        _login(alpha, alpha.owner_email).post(
            f"/invoices/{book['ada_draft']}/credit-notes/", {"amount": "1"}, follow=True
        )
    )
    assert "only open, paid or uncollectible invoices take credit notes" in draft


def test_an_invoice_the_provider_collects_is_voided_at_the_provider_not_here(alpha):
    with tenant_context(alpha.tenant):
        ada, _ = customer_upsert(external_id="ada")
        invoice = _invoice(
            ada, 4900, collected_by="provider", provider="stripe", provider_invoice_id="in_123"
        )
    client = _login(alpha, alpha.owner_email)
    page = _text(client.get(f"/invoices/{invoice.pk}/"))
    assert "Stripe (mirrored from its webhooks)" in page and "<code>in_123</code>" in page
    assert 'data-action="void"' not in page and 'data-action="mark-uncollectible"' not in page
    assert "void it or mark it uncollectible in Stripe" in page
    page = _text(client.post(f"/invoices/{invoice.pk}/void/", follow=True))
    assert "is collected by stripe: change it there" in page and _status(alpha, invoice.pk) == "open"


def test_discounts_and_taxes_are_shown_by_coupon_and_rate(alpha, customer_client):
    from billing.discounts.services import coupon_create
    from billing.invoicing.taxes import tax_rate_create
    from billing.memberships.services import customer_discount_apply

    client, customer = customer_client
    with tenant_context(alpha.tenant):
        coupon_create(code="TEN", name="Launch offer", percent_off=Decimal(10), duration="forever")
        customer_discount_apply(customer=customer, coupon_code="TEN")
        tax_rate_create(name="VAT", percent=Decimal(20))
        tax_rate_create(name="City tax", percent=Decimal("2.5"), inclusive=True)
        invoice = _invoice(customer, 10_000)
    # 10% off; 2.5% included in the 90.00 (90 − 90 / 1.025 = 2.195… → 2.20), 20% on the 87.80 without it
    assert (invoice.discount, invoice.tax, invoice.total) == (1000, 220 + 1756, 9000 + 1756)
    page = _text(_login(alpha, alpha.owner_email).get(f"/invoices/{invoice.pk}/"))
    amounts = page.split('data-testid="totals"')[1].split("</table>")[0]
    rows = [re.sub(r"<[^>]+>", "", row).strip(" >") for row in amounts.split("</tr>")[:-1]]
    assert rows[:5] == [
        "Subtotal $100.00",
        "Discount (TEN) Launch offer −$10.00",
        "VAT 20% $17.56",
        "City tax 2.5% (included) $2.20",
        "Total $107.56",
    ]
    # the customer's upcoming invoice shows the same adjustments as the API computes them
    from billing.memberships.models import Membership
    from billing.tiers.catalog import catalog_import
    from billing.tiers.models import Price
    from tests.billing.test_usage_prices import USAGE

    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        price = Price.objects.get(code="pro-monthly")
        now = timezone.now()
        Membership.objects.create(
            customer=customer, tier=price.tier, price=price, status="active", quantity=1, started_at=now,
            current_period_start=now - dt.timedelta(days=1), current_period_end=now + dt.timedelta(days=29),
        )  # fmt: skip
    api = alpha.api().get(f"/api/v1/customers/{customer.external_id}/invoices/upcoming").json()
    upcoming = (
        _text(client.get("/account/billing/")).split('data-testid="upcoming"')[1].split("</section>")[0]
    )
    assert f'data-testid="upcoming-total">${api["total"] / 100:,.2f}<' in upcoming
    assert f'data-testid="upcoming-sum">${api["total"] / 100:,.2f}<' in upcoming
    assert (
        "Discount (TEN)" in upcoming
        and f"−${api['discount'] / 100:,.2f}" in upcoming
        and "VAT 20%" in upcoming
    )
