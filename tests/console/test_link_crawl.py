# ruff: noqa: F811  (pytest fixtures imported from the earnings and payouts tests)
"""Every same-host link, for every persona (issue 13: "a crawl of every same-host link for every
persona with no non-2xx/3xx"): owner, admin, finance, support, creator, customer (a fan), the
anonymous visitor, the owner and a customer of a new tenant with no data (the empty states' links),
and the operator on the bare host. From the persona's home the crawl follows, breadth first, every
same-host `<a href>`, `hx-get`, stylesheet, script and image, every `<form method=get>` (sent as it
is shown, and once with each other option of each of its selects) and every redirect. It is bounded:
URLs that differ only by ids, numbers or dates are one; at most PER_PATTERN URLs per path (ids
collapsed), one object per model in the Django admin, MAX_PAGES in all. It fails listing each URL
that answered 4xx/5xx with the page that linked to it.

Two more checks ride along on every page it reads: a number other than one is never followed by a
singular unit ("5,700 minute"), and reading a page changes no row (a GET that changes state is a
bug: actions are POSTs; the crawl reads the transaction's own row counters after each request)."""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import user_create
from tests.billing.test_creator_earnings import balance, studio  # noqa: F401
from tests.billing.test_creator_payouts import earned, worker  # noqa: F401
from tests.conftest import CATALOGS, PASSWORD

MAX_PAGES = 600  # per persona
PER_PATTERN = 12  # URLs per path pattern (ids collapsed): its filters, sorts and pages, breadth first
# GET links the crawl must not follow even if a page offers them (none should: see the docstring)
SKIP = re.compile(r"^/accounts/logout/|^/admin/logout/")
ID = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z]+_[A-Za-z0-9_]{6,})$"
)


# --- the crawler -------------------------------------------------------------------------------------


class _Links(HTMLParser):
    """The GET targets a page offers: `<a href>`, `hx-get`, `<form method=get>` with its fields' current
    values (inputs, checked boxes, selected options), and what it loads (stylesheets, scripts, images);
    and the page's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.text: list[str] = []
        self._form: dict | None = None
        self._select: dict | None = None
        self._hidden = 0  # inside <script>/<style>/<template>

    def handle_starttag(self, tag, attrs):
        a = {name: value if value is not None else "" for name, value in attrs}
        if tag in ("script", "style", "template"):
            self._hidden += 1
        if tag == "a" and a.get("href"):
            self.urls.append(a["href"])
        if tag in ("link", "script", "img") and (
            a.get("href") or a.get("src")
        ):  # stylesheets, scripts, logos
            self.urls.append(a.get("href") or a.get("src"))
        if a.get("hx-get"):
            self.urls.append(a["hx-get"])
        if tag == "form":
            get = (a.get("method") or "get").lower() == "get" and "hx-post" not in a
            self._form = {"action": a.get("action") or "", "fields": [], "choices": {}} if get else None
        if self._form is None:
            return
        if tag == "option" and self._select is not None:
            self._select["options"].append(a.get("value", ""))
            if "selected" in a:
                self._select["selected"].append(a.get("value", ""))
        if not a.get("name") or "disabled" in a:
            return
        kind = (a.get("type") or "text").lower()
        if tag == "input" and kind in ("checkbox", "radio"):
            if "checked" in a:
                self._form["fields"].append((a["name"], a.get("value") or "on"))
        elif tag == "input" and kind not in ("submit", "button", "image", "reset", "file"):
            self._form["fields"].append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._form["fields"].append((a["name"], ""))
        elif tag == "select":
            self._select = {"name": a["name"], "options": [], "selected": []}

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden = max(0, self._hidden - 1)
        if tag == "select" and self._select is not None:
            value = (self._select["selected"] or self._select["options"] or [""])[0]
            if self._form is not None:
                self._form["fields"].append((self._select["name"], value))
                self._form["choices"][self._select["name"]] = [
                    o for o in self._select["options"] if o != value
                ]
            self._select = None
        if tag == "form" and self._form is not None:
            action, fields = self._form["action"].split("?")[0], self._form["fields"]
            self.urls.append(f"{action}?{urlencode(fields)}" if fields else action or "?")
            for name, options in self._form["choices"].items():  # each other option of each select
                for option in options:
                    changed = [(key, option if key == name else value) for key, value in fields]
                    self.urls.append(f"{action}?{urlencode(changed)}")
            self._form = None

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def _pattern(path: str) -> str:
    """A path with its ids collapsed; in the Django admin (our ModelAdmins on Django's pages) one
    object of each model stands for all."""
    if path.startswith("/admin/"):
        return re.sub(r"^(/admin/[^/]+/[^/]+/)[^/]+/", r"\1{id}/", path)
    return "/".join("{id}" if ID.match(part) else part for part in path.split("/"))


def _variant(path: str, query: str) -> tuple:
    """What makes two URLs the same page for the crawl: the path's pattern and the query's keys and
    values, with ids, numbers and dates (pages, cursors, ranges) collapsed; the admin's lists once."""
    if path.startswith("/admin/"):
        return (_pattern(path),)
    pairs = sorted(
        (key, "{n}" if ID.match(value) or re.fullmatch(r"[\d\-:T.+ ]+", value) else value)
        for key, value in parse_qsl(query, keep_blank_values=True)
    )
    return (_pattern(path), *pairs)


def _singular_after_a_number(units: list[str]) -> re.Pattern:
    """ "5,700 minute", "2 seat" (not "1 minute", "1.5 minutes", nor "3 credit notes": a unit as an
    adjective)."""
    number = r"(?<![\w.,])(?!1(?![\d,.]))(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
    compounds = r"(?!s\b|-| (?:note|value|alert|requirement|balance|ledger|limit|grant)s?\b)"
    return re.compile(rf"{number}\s+(?:{'|'.join(map(re.escape, units))})\b{compounds}")


@dataclass
class Crawl:
    visited: dict[str, int] = field(default_factory=dict)  # url → status
    broken: list[str] = field(default_factory=list)
    wording: list[str] = field(default_factory=list)
    writes: list[tuple[str, str, dict]] = field(default_factory=list)  # GETs that changed rows


def crawl(client: Client, host: str, start: str, *, units: list[str], max_pages: int = MAX_PAGES) -> Crawl:
    """Breadth first from `start` over same-host GET links; `units` are the singular nouns that must
    not follow a number other than one."""
    singular = _singular_after_a_number(units)
    result = Crawl()
    variants: set[tuple] = set()
    per_pattern: dict[str, int] = {}
    queue: deque[tuple[str, str]] = deque([(start, "(start)")])
    queued = {start}
    while queue and len(result.visited) < max_pages:
        url, source = queue.popleft()
        before = _writes()
        response = client.get(url)
        if changed := _changes(before, _writes()):
            result.writes.append((url, source, changed))
        status = response.status_code
        result.visited[url] = status
        if status >= 400:
            result.broken.append(f"{url} answered {status} (linked from {source})")
            continue
        targets: list[str] = []
        if 300 <= status < 400:
            targets.append(response["Location"])
        elif "text/html" in response.get("Content-Type", ""):
            parser = _Links()
            parser.feed(response.content.decode())
            targets = parser.urls
            text = re.sub(r"\s+", " ", " ".join(parser.text))
            for match in singular.finditer(text) if not url.startswith("/admin/") else ():  # Django's words
                result.wording.append(f"{url}: …{text[max(0, match.start() - 30) : match.end() + 10]}…")
        for href in targets:
            href = href.strip()
            if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
                continue
            absolute = urlsplit(urljoin(f"http://{host}{url}", href))
            if absolute.scheme not in ("http", "https") or absolute.hostname != host.split(":")[0]:
                continue
            target = absolute.path + (f"?{absolute.query}" if absolute.query else "")
            if SKIP.search(absolute.path):
                continue
            variant, pattern = _variant(absolute.path, absolute.query), _pattern(absolute.path)
            bound = 1 if absolute.path.startswith("/admin/") else PER_PATTERN
            if target in queued or variant in variants or per_pattern.get(pattern, 0) >= bound:
                continue
            variants.add(variant)
            per_pattern[pattern] = per_pattern.get(pattern, 0) + 1
            queued.add(target)
            queue.append((target, url))
    return result


# sessions are rewritten when a page reads its flash messages: no business state
NOT_STATE = {"django_session"}


def _writes() -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated and deleted so far in this transaction, per table (the crawl's requests
    run inside the test's transaction, on its connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables"
            " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
        )
        return {row[0]: row[1:] for row in cursor.fetchall() if row[0].split(".")[1] not in NOT_STATE}


def _changes(before: dict, after: dict) -> dict[str, str]:
    changes = {}
    for table, counts in after.items():
        delta = [n - b for n, b in zip(counts, before.get(table, (0, 0, 0)), strict=True)]
        if any(delta):
            changes[table] = ", ".join(
                f"{n} {verb}" for n, verb in zip(delta, ("inserted", "updated", "deleted"), strict=True) if n
            )
    return changes


# --- the tenant: every kind of row a detail page shows ------------------------------------------------


@pytest.fixture
def site(earned, django_capture_on_commit_callbacks):
    """alpha with the CI catalog; staff of every role; ann (a creator with earnings, two paid payouts,
    channel tiers) and her user; a fan (a customer user who tipped ann) past due on Pro through the
    sandbox, with usage, a paid (partly refunded: a credit note), an open and a void invoice, credits,
    an API key and an override; customers trialing, past due, canceled and never subscribed; dead and
    applied inbox events; a webhook endpoint with deliveries; reconciliation runs with differences."""
    from billing.discounts.services import coupon_create
    from billing.entitlements.services import customer_key_create, override_set
    from billing.inbox.models import InboxEvent, InboxStatus
    from billing.invoicing.credit_notes import credit_note_create
    from billing.invoicing.services import (
        LineDraft,
        engine_invoice_ref,
        invoice_draft_create,
        invoice_finalize,
        invoice_void,
    )
    from billing.invoicing.taxes import tax_rate_create
    from billing.ledger.creators.models import Creator
    from billing.ledger.creators.payouts import payout_request
    from billing.ledger.creators.services import creator_tier_create
    from billing.ledger.reconciliation.models import ReconciliationItem, ReconciliationRun
    from billing.ledger.reconciliation.services import day_window
    from billing.memberships.models import Customer, Membership
    from billing.memberships.services import customer_discount_apply, customer_upsert, payment_record
    from billing.metering.credit_adjustments import credits_adjust
    from billing.metering.ingest import events_ingest
    from billing.metering.rollups import rollups_fold
    from billing.providers.base import PaymentState
    from billing.tiers.catalog import catalog_import
    from billing.tiers.models import Price

    with tenant_context(earned.tenant):
        catalog_import(text=(CATALOGS / "ci-service.yaml").read_text(), filename="ci-service.yaml")
        for role in (Role.ADMIN, Role.FINANCE, Role.SUPPORT):
            user_create(email=f"{role}@alpha.test", password=PASSWORD, role=role)
        ann = Creator.objects.get(handle="ann")
        ann.user = user_create(email="ann@alpha.test", password=PASSWORD, role=Role.CREATOR)
        ann.save(update_fields=["user"])
        creator_tier_create(creator=ann, code="gold", name="Gold", amount=500, currency="usd")
        for amount in (4_000, 2_000):
            with django_capture_on_commit_callbacks(execute=True):
                payout_request(creator=ann, currency="usd", amount=amount)

        # fan1 (who tipped ann) signs up: their record becomes the user's (external id `user_<pk>`)
        user = user_create(email="fan@alpha.test", password=PASSWORD, role=Role.CUSTOMER)
        Customer.objects.filter(external_id="fan1").update(
            external_id=f"user_{user.pk}", user=user, email="billing@fran.example", name="Fran Fan"
        )
        fan = Customer.objects.get(user=user)
        now = timezone.now()
        pro = Price.objects.get(code="pro-monthly")
        Membership.objects.create(
            customer=fan, tier=pro.tier, price=pro, status="past_due", quantity=3, provider="sandbox",
            provider_subscription_id="sub_sbx_crawl", started_at=now - dt.timedelta(days=40),
            past_due_since=now - dt.timedelta(days=1), current_period_start=now - dt.timedelta(days=10),
            current_period_end=now + dt.timedelta(days=20),
        )  # fmt: skip
        for n, (external_id, status) in enumerate(
            [("tia", "trialing"), ("pat", "past_due"), ("cal", "canceled")]
        ):
            customer, _ = customer_upsert(external_id=external_id, email=f"{external_id}@example.com")
            team = Price.objects.get(code="team-monthly")
            Membership.objects.create(
                customer=customer, tier=team.tier, price=team, status=status, quantity=1 + n,
                started_at=now - dt.timedelta(days=n), current_period_end=now + dt.timedelta(days=9),
                ended_at=now if status == "canceled" else None,
            )  # fmt: skip
        customer_upsert(external_id="kim", email="minji@example.kr", name="Kim Min-ji")
        coupon_create(code="TEAM20", name="Team launch", percent_off=Decimal(20), duration="repeating",
                      duration_in_periods=3, max_redemptions=100, tier_codes=["team"])  # fmt: skip
        coupon_create(code="FIVEOFF", amount_off=500, currency="usd", duration="once")
        customer_discount_apply(customer=Customer.objects.get(external_id="kim"), coupon_code="TEAM20")
        tax_rate_create(name="VAT", percent=Decimal(19), inclusive=True, country="DE")
        events_ingest(
            events=[{"id": f"m{i}", "customer": fan.external_id, "type": "build.finished",
                     "timestamp": (now - dt.timedelta(hours=1 + 20 * i)).isoformat(),
                     "properties": {"minutes": 1200 + 700 * i}} for i in range(3)]
        )  # fmt: skip
        rollups_fold()
        credits_adjust(customer=fan, amount=2_500_000_000, reason="Welcome credits", reference="crawl:1")
        customer_key_create(customer=fan, name="CI runner")
        override_set(
            customer=fan, feature="concurrent_jobs", enabled=True, limit_value=9, unlimited=False, note=""
        )

        def issue(customer, amount, currency="usd"):
            draft, _ = invoice_draft_create(
                customer=customer, currency=currency,
                lines=[LineDraft(kind="fee", description="Pro (monthly) × 3 seats", amount=amount)],
            )  # fmt: skip
            return invoice_finalize(invoice_id=draft.pk)

        paid = issue(fan, 14_700)
        payment_record(
            provider="sandbox", event_type="payment.succeeded", occurred_at=now, event_id="evt_crawl_paid",
            payment=PaymentState(payment_id="pay_crawl", amount=paid.total, currency="usd",
                                 customer=fan.external_id, invoice=engine_invoice_ref(paid)),
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            credit_note_create(invoice_id=paid.pk, amount=4_900, reason="product_unsatisfactory", refund=True)
        issue(fan, 4_900)
        invoice_void(invoice_id=issue(fan, 25_000).pk)
        issue(Customer.objects.get(external_id="kim"), 39_000, currency="krw")

        InboxEvent.objects.create(
            provider="stripe", event_id="evt_1QxDeadEvent", event_type="invoice.paid", status=InboxStatus.DEAD,
            attempts=8, payload={"id": "evt_1QxDeadEvent"}, last_error="InvalidProviderEvent: no price 'price_9'",
        )  # fmt: skip
        day = dt.date(2026, 11, 30)
        start, end = day_window(day)
        ReconciliationRun.objects.create(
            provider="sandbox", day=day, window_start=start, window_end=end, status="balanced",
            provider_count=12, ledger_count=12, matched_count=12, finished_at=end,
        )  # fmt: skip
        run = ReconciliationRun.objects.create(
            provider="stripe", day=day, window_start=start, window_end=end, status="differences",
            provider_count=3, ledger_count=2, matched_count=1, difference_count=2, finished_at=end,
        )  # fmt: skip
        ReconciliationItem.objects.bulk_create(
            [ReconciliationItem(run=run, kind="missing_in_ledger", provider_ref="ch_3PgX7qB7WZ01", currency="usd",
                                provider_amount=129_900, provider_fee=3_797, occurred_at=start),
             ReconciliationItem(run=run, kind="fee_mismatch", provider_ref="ch_3PgX7qB7WZ02", currency="usd",
                                provider_amount=2_900, provider_fee=114, our_amount=2_900, our_fee=84,
                                ledger_amount=2_816, occurred_at=start)]
        )  # fmt: skip
    connection.set_schema_to_public()
    return earned


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    """Lists of a row or two, so that every list of the seed has a next and a previous page."""
    from billing.invoicing.pages import views as invoice_pages

    monkeypatch.setattr(invoice_pages._paged, "__defaults__", (2,))
    for module in ("billing.ledger.reconciliation.views", "console.developers.selectors",
                   "console.customers.views", "console.creators.views", "billing.invoicing.pages.views"):  # fmt: skip
        monkeypatch.setattr(f"{module}.PAGE_SIZE", 1)


@pytest.fixture
def operator(db):
    """A superuser on the public schema (the operator's console)."""
    from accounts.models import User

    connection.set_schema_to_public()
    User.objects.create_superuser(email="root@operator.test", password=PASSWORD)
    return "root@operator.test"


def _units(fixture) -> list[str]:
    from billing.metering.models import Meter
    from billing.tiers.models import Feature

    with tenant_context(fixture.tenant):
        nouns = {u for u in Feature.objects.values_list("unit", flat=True) if u}
        nouns |= {u for u in Meter.objects.values_list("unit", flat=True) if u}
    return sorted(nouns | {"seat", "credit", "row"})


# persona → (tenant, login, pages the crawl must reach from the home page: it cannot quietly shrink);
# "site" has a row of every kind, "beta" is a new tenant with no catalog and no data (empty states)
PERSONAS = {
    "owner": ("site", "owner@alpha.test", ["/customers/{id}/", "/invoices/{id}/", "/invoices/{id}/pdf/",
                                           "/catalog/prices/{id}/", "/developers/inbox/{id}/",
                                           "/developers/webhooks/{id}/deliveries/{id}/", "/reconciliation/{id}/",
                                           "/creators/payouts/", "/settings/", "/catalog/coupons/TEAM20/",
                                           "/catalog/tax-rates/{id}/", "/admin/"]),
    "admin": ("site", "admin@alpha.test", ["/customers/{id}/", "/catalog/tiers/pro/", "/developers/webhooks/{id}/",
                                           "/catalog/coupons/FIVEOFF/", "/catalog/coupons/new/", "/catalog/tax-rates/{id}/",
                                           "/catalog/tax-rates/new/", "/admin/"]),
    "finance": ("site", "finance@alpha.test", ["/customers/{id}/", "/invoices/{id}/", "/reconciliation/{id}/",
                                               "/creators/"]),
    "support": ("site", "support@alpha.test", ["/customers/{id}/", "/developers/inbox/{id}/", "/usage/ai/"]),
    "creator": ("site", "ann@alpha.test", ["/creator/", "/account/plan/", "/account/billing/"]),
    "customer": ("site", "fan@alpha.test", ["/account/plan/", "/account/billing/invoices/{id}/pdf/",
                                            "/account/supporting/", "/sandbox/payment-method/"]),
    "anonymous": ("site", None, ["/pricing/", "/accounts/signup/", "/accounts/login/"]),
    "new-owner": ("beta", "owner@beta.test", ["/dashboard/", "/customers/", "/catalog/", "/developers/inbox/",
                                              "/catalog/coupons/new/", "/catalog/tax-rates/new/"]),
    "new-customer": ("beta", "customer@beta.test", ["/account/plan/", "/account/billing/", "/pricing/"]),
}  # fmt: skip


def _first_visit(persona: str, writes: list) -> list:
    """A person without a customer record (a creator made by staff, not signed up) gets one the first
    time they open a page about their own plan: that one inserted row is expected, nothing else."""
    record = {f"{connection.schema_name}.memberships_customer": "1 inserted"}
    if persona in ("creator", "customer", "new-customer") and writes and writes[0][2] == record:
        return writes[1:]
    return writes


def _missed(expected: list[str], result: Crawl) -> list[str]:
    paths = {url.split("?", 1)[0] for url in result.visited}
    patterns = {page: re.compile(re.escape(page).replace(r"\{id\}", "[^/]+")) for page in expected}
    return [page for page, pattern in patterns.items() if not any(pattern.fullmatch(path) for path in paths)]


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_link_a_persona_can_reach_answers(request, persona):
    tenant, email, expected = PERSONAS[persona]
    site = request.getfixturevalue(tenant)
    client = site.client(raise_request_exception=False)
    if email:
        login = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
        assert login.status_code == 302, login.content[:300]

    result = crawl(client, site.host, "/", units=_units(site))

    assert not (missed := _missed(expected, result)), (
        f"{persona} never reached {missed}: {sorted(result.visited)}"
    )
    assert len(result.visited) < MAX_PAGES, "the crawl hit its bound: raise it or collapse more"
    assert not result.broken, f"{persona}: links that answer 4xx/5xx:\n" + "\n".join(result.broken)
    assert not result.wording, f"{persona}: a number with a singular unit:\n" + "\n".join(result.wording)
    with tenant_context(site.tenant):
        writes = _first_visit(persona, result.writes)
    assert not writes, f"{persona}: pages that changed rows when read:\n" + "\n".join(map(str, writes))


def test_every_link_of_the_operator_console_answers(alpha, beta, operator):
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    login = client.post("/admin/login/?next=/", {"username": operator, "password": PASSWORD})
    assert login.status_code == 302, login.content[:300]

    result = crawl(client, "localhost", "/", units=["tenant"])

    assert not (missed := _missed(["/", "/admin/tenants/tenant/{id}/change/"], result)), missed
    assert not result.broken, "operator: links that answer 4xx/5xx:\n" + "\n".join(result.broken)
    assert not result.writes, "operator: pages that changed rows when read:\n" + "\n".join(
        map(str, result.writes)
    )


def test_the_crawler_reports_broken_links_forms_options_and_singular_units(db):
    """The crawler itself, on made-up pages: what it follows, what it reports, what it leaves."""
    from django.http import HttpResponse, HttpResponseRedirect

    pages = {
        "/": '<a href="/a/">A</a> <a href="https://elsewhere.example/x/">out</a> <a href="/accounts/logout/">bye</a>'
        '<form method="get" action="/list/"><select name="status"><option value="">Any</option>'
        '<option value="paid">Paid</option><option value="void">Void</option></select></form>'
        '<form method="post" action="/delete/"><input name="id" value="1"></form>',
        "/a/": "redirect:/b/",
        "/b/": '<p>Used <strong>5,700</strong> minute, 1 minute, 3 credit notes</p><a href="missing/">?</a>',
        "/list/?status=": "<p>all</p>",
        "/list/?status=paid": "<p>paid</p>",
    }

    class Stub:
        def get(self, url):
            body = pages.get(url)
            if body is None:
                return HttpResponse("no", status=500 if url.startswith("/list/") else 404)
            if body.startswith("redirect:"):
                return HttpResponseRedirect(body.removeprefix("redirect:"))
            return HttpResponse(body)

    result = crawl(Stub(), "alpha.test", "/", units=["minute", "credit"])

    assert set(result.visited) == {"/", "/a/", "/b/", "/b/missing/", "/list/?status=", "/list/?status=paid",
                                   "/list/?status=void"}  # fmt: skip
    assert result.broken == [
        "/list/?status=void answered 500 (linked from /)",
        "/b/missing/ answered 404 (linked from /b/)",
    ]
    assert len(result.wording) == 1 and "5,700 minute," in result.wording[0]
    assert result.writes == []
