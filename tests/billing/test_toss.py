"""The TossPayments adapter (billing keys + our own schedule), with only Toss's network edge faked:
an httpx.MockTransport that answers like api.tosspayments.com (Billing and Payment objects, error
bodies {code, message}, Idempotency-Key replays) and records what it was sent."""

import base64
import datetime as dt
import json
import re
import secrets
import time

import httpx
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent
from billing.invoicing.engine import charges_due_run
from billing.memberships.models import Checkout, Membership, Payment
from billing.providers.models import EngineCharge, EngineCheckout, EngineSubscription
from billing.providers.services import provider_account_upsert
from billing.providers.toss import TossProvider
from billing.tiers.models import Price, Tier
from tests.billing.test_entitlements import check, make_customer
from tests.billing.test_webhooks_in import process_all

SECRET_KEY = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"
CLIENT_KEY = "test_ck_D5GePWvyJnrK0W0k6q8gLzN97Eoq"
KST = dt.timezone(dt.timedelta(hours=9))


def toss_time(at: dt.datetime | None = None) -> str:
    return (at or dt.datetime.now(dt.UTC)).astimezone(KST).isoformat(timespec="seconds")


class FakeToss:
    """api.tosspayments.com as far as the adapter uses it."""

    def __init__(self):
        self.requests = []
        self.billing = {}  # billingKey -> customerKey
        self.payments = {}  # paymentKey -> Payment
        self.replies = {}  # Idempotency-Key -> (status, body): Toss answers a repeated key with its first answer
        self.decline = False
        self.down = False
        self.lose_reply = False  # charge, then the connection breaks before the answer arrives

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "json": body,
            }
        )
        if self.down:
            return httpx.Response(
                500,
                json={
                    "code": "FAILED_INTERNAL_SYSTEM_PROCESSING",
                    "message": "내부 시스템 처리 작업이 실패했습니다.",
                },
            )
        key = request.headers.get("idempotency-key")
        if key and key in self.replies:
            status, reply = self.replies[key]
            return httpx.Response(status, json=reply)
        status, reply = self.route(request.method, request.url.path, body)
        if key:
            self.replies[key] = (status, reply)
        if self.lose_reply:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(status, json=reply)

    def route(self, method, path, body):
        if method == "POST" and path == "/v1/billing/authorizations/issue":
            billing_key = "bk_" + secrets.token_urlsafe(24)
            self.billing[billing_key] = body["customerKey"]
            return 200, {
                "mId": "tosspayments", "customerKey": body["customerKey"], "authenticatedAt": toss_time(),
                "method": "카드", "billingKey": billing_key, "cardCompany": "현대", "cardNumber": "43301234****123*",
                "card": {"issuerCode": "61", "acquirerCode": "31", "number": "43301234****123*", "cardType": "신용",
                         "ownerType": "개인"},
            }  # fmt: skip
        if method == "POST" and path.startswith("/v1/billing/"):
            billing_key = path.rsplit("/", 1)[1]
            if billing_key not in self.billing:
                return 404, {"code": "NOT_FOUND_BILLING", "message": "존재하지 않는 빌링키입니다."}
            if self.billing[billing_key] != body["customerKey"]:
                return 400, {"code": "NOT_MATCHES_CUSTOMER_KEY", "message": "빌링 인증 고객키와 결제 요청 고객키가 일치하지 않습니다."}  # fmt: skip
            if self.decline:
                return 403, {
                    "code": "REJECT_CARD_PAYMENT",
                    "message": "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
                }
            if any(p["orderId"] == body["orderId"] for p in self.payments.values()):
                return 400, {
                    "code": "DUPLICATED_ORDER_ID",
                    "message": "이미 승인 및 취소가 진행된 중복된 주문번호 입니다.",
                }
            payment_key = "tviva" + secrets.token_hex(16)
            amount = body["amount"]
            self.payments[payment_key] = {
                "mId": "tosspayments", "version": "2022-11-16", "lastTransactionKey": secrets.token_hex(16).upper(),
                "paymentKey": payment_key, "orderId": body["orderId"], "orderName": body["orderName"],
                "taxExemptionAmount": 0, "status": "DONE", "requestedAt": toss_time(), "approvedAt": toss_time(),
                "useEscrow": False, "cultureExpense": False, "type": "BILLING", "country": "KR", "method": "카드",
                "card": {"issuerCode": "61", "acquirerCode": "31", "number": "43301234****123*",
                         "installmentPlanMonths": 0, "isInterestFree": False, "approveNo": "00000000",
                         "useCardPoint": False, "cardType": "신용", "ownerType": "개인", "acquireStatus": "READY",
                         "amount": amount},
                "cancels": None, "failure": None, "currency": "KRW", "totalAmount": amount, "balanceAmount": amount,
                "suppliedAmount": amount - amount // 11, "vat": amount // 11, "taxFreeAmount": 0,
            }  # fmt: skip
            return 200, self.payments[payment_key]
        if method == "GET" and path.startswith("/v1/payments/orders/"):
            order_id = path.rsplit("/", 1)[1]
            found = [p for p in self.payments.values() if p["orderId"] == order_id]
            return (
                (200, found[0])
                if found
                else (404, {"code": "NOT_FOUND_PAYMENT", "message": "존재하지 않는 결제 입니다."})
            )
        if method == "GET" and path.startswith("/v1/payments/"):
            payment = self.payments.get(path.rsplit("/", 1)[1])
            return (
                (200, payment)
                if payment
                else (404, {"code": "NOT_FOUND_PAYMENT", "message": "존재하지 않는 결제 입니다."})
            )
        return 404, {"code": "NOT_FOUND", "message": f"no route {method} {path}"}

    def cancel(self, payment_key: str) -> dict:
        """What Toss's console does on a full refund."""
        payment = self.payments[payment_key]
        payment.update(
            status="CANCELED", balanceAmount=0, lastTransactionKey=secrets.token_hex(16).upper(),
            cancels=[{"transactionKey": secrets.token_hex(16).upper(), "cancelReason": "고객 요청",
                      "taxExemptionAmount": 0, "canceledAt": toss_time(), "easyPayDiscountAmount": 0,
                      "receiptKey": None, "cancelAmount": payment["totalAmount"], "taxFreeAmount": 0,
                      "refundableAmount": 0, "cancelStatus": "DONE", "cancelRequestId": None}],
        )  # fmt: skip
        return payment

    def charges(self):
        return [
            r
            for r in self.requests
            if r["method"] == "POST" and re.match(r"^/v1/billing/(?!authorizations)", r["path"])
        ]


@pytest.fixture
def toss_shop(ci_catalog, monkeypatch):
    """alpha with the CI catalog, a KRW Team price, TossPayments configured and customer c1."""
    fake = FakeToss()
    monkeypatch.setattr(TossProvider, "http_transport", httpx.MockTransport(fake))
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="toss",
            credentials={"client_key": CLIENT_KEY, "secret_key": SECRET_KEY},
            make_default=True,
        )
        team = Tier.objects.get(code="team")
        Price.objects.create(tier=team, code="team-krw", currency="krw", unit_amount=25000, interval="month")
        Price.objects.create(
            tier=Tier.objects.get(code="pro"), code="pro-krw", currency="krw", unit_amount=59000
        )
    make_customer(ci_catalog)
    return ci_catalog, fake


def start(fixture, price="team-krw"):
    body = {"customer": "c1", "price": price, "provider": "toss", "success_url": "https://app.test/ok",
            "cancel_url": "https://app.test/no"}  # fmt: skip
    return fixture.api().post("/api/v1/checkouts", body, content_type="application/json")


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def come_back(fixture, checkout_id, capture, *, auth_key="auth_1", customer_key=None):
    """Toss's billing-auth window redirects to our successUrl with customerKey and authKey."""
    if customer_key is None:
        with tenant_context(fixture.tenant):
            customer_key = EngineCheckout.objects.get(pk=checkout_id).customer_key
    with capture(execute=True):  # our engine's events reach the inbox once its writes commit
        return fixture.client().get(
            f"/toss/success/{checkout_id}/", {"customerKey": customer_key, "authKey": auth_key}
        )


def subscribe(fixture, fake, capture) -> EngineSubscription:
    checkout_id = start(fixture).json()["id"]
    assert come_back(fixture, checkout_id, capture).status_code == 302
    process_all(fixture)
    with tenant_context(fixture.tenant):
        return EngineSubscription.objects.get()


def run_job(fixture, capture, now):
    with tenant_context(fixture.tenant), capture(execute=True):
        played = charges_due_run(now=now)
    process_all(fixture)
    return played


def membership(fixture):
    with tenant_context(fixture.tenant):
        return Membership.objects.filter(provider="toss").order_by("-id").first()


def toss_webhook(fixture, payload):
    return fixture.client().post("/webhooks/toss/", json.dumps(payload), content_type="application/json")


# --- checkout ------------------------------------------------------------------------------------


def test_checkout_page_renders_the_billing_auth_window(toss_shop):
    fixture, fake = toss_shop
    response = start(fixture)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"] == f"http://alpha.test/toss/checkout/{body['id']}/" and body["provider"] == "toss"
    page = fixture.client().get(path_of(body["url"]))
    html = page.content.decode()
    assert page.status_code == 200 and "₩25,000" in html
    assert "https://js.tosspayments.com/v2/standard" in html and "requestBillingAuth" in html
    assert CLIENT_KEY in html and SECRET_KEY not in html
    assert f"http://alpha.test/toss/success/{body['id']}/" in html
    with tenant_context(fixture.tenant):
        key = EngineCheckout.objects.get(pk=body["id"]).customer_key
    # random, not derived from the customer (a substring check would be flaky: random text may hold "c1")
    assert key in html and len(key) >= 32 and key not in ("c1", "c1@example.com")
    assert fake.requests == []  # nothing to create at Toss before the customer registers a card
    # the same customer keeps one customerKey
    second = start(fixture).json()
    with tenant_context(fixture.tenant):
        assert EngineCheckout.objects.get(pk=second["id"]).customer_key == key


def test_a_non_krw_price_is_refused_with_a_4xx(toss_shop):
    fixture, fake = toss_shop
    response = start(fixture, price="team-monthly")  # usd
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "currency_not_supported"
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists() and not EngineCheckout.objects.exists()


def test_success_issues_the_key_charges_the_first_period_and_activates(
    toss_shop, django_capture_on_commit_callbacks
):
    fixture, fake = toss_shop
    checkout_id = start(fixture).json()["id"]
    response = come_back(fixture, checkout_id, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == "https://app.test/ok"

    issue, charge = fake.requests
    with tenant_context(fixture.tenant):
        sub = EngineSubscription.objects.get()
        customer_key = EngineCheckout.objects.get(pk=checkout_id).customer_key
    basic = "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    assert issue["path"] == "/v1/billing/authorizations/issue"
    assert issue["json"] == {"authKey": "auth_1", "customerKey": customer_key}
    assert issue["headers"]["authorization"] == basic
    billing_key = next(iter(fake.billing))
    assert charge["path"] == f"/v1/billing/{billing_key}" and charge["headers"]["authorization"] == basic
    assert charge["json"]["orderId"] == f"tsub-{sub.id}-1" == charge["headers"]["idempotency-key"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{6,64}", charge["json"]["orderId"])
    assert charge["json"]["amount"] == 25000 and charge["json"]["customerKey"] == customer_key

    with tenant_context(fixture.tenant):
        # the billing key is stored encrypted: not in the row's text, but it decrypts
        with connection.cursor() as cursor:
            cursor.execute("SELECT t::text FROM providers_enginesubscription t")
            (row_text,) = cursor.fetchone()
        assert billing_key not in row_text and sub.billing_key == billing_key
        assert (sub.card_company, sub.card_number) == ("현대", "43301234****123*")
        assert list(InboxEvent.objects.order_by("id").values_list("event_type", flat=True)) == [
            "subscription.created",
            "payment.succeeded",
        ]
    assert check(fixture, feature="private_projects").json()["tier"] == "community"  # not applied yet
    process_all(fixture)
    assert check(fixture, feature="private_projects").json()["tier"] == "team"
    m = membership(fixture)
    assert (m.status, m.price.code, m.provider_subscription_id) == ("active", "team-krw", sub.id)
    with tenant_context(fixture.tenant):
        assert Checkout.objects.get(pk=checkout_id).status == "completed"
        payment = Payment.objects.get()
        assert (payment.kind, payment.amount, payment.currency, payment.membership_id) == (
            "charge",
            25000,
            "krw",
            m.pk,
        )
        assert payment.provider_payment_id == EngineCharge.objects.get().payment_key


def test_reloading_the_success_url_charges_once(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    checkout_id = start(fixture).json()["id"]
    responses = [come_back(fixture, checkout_id, django_capture_on_commit_callbacks) for _ in range(3)]
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert len(fake.charges()) == 1 and len(fake.billing) == 1
    with tenant_context(fixture.tenant):
        assert EngineSubscription.objects.count() == 1 and InboxEvent.objects.count() == 2


def test_a_foreign_customer_key_is_refused(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    checkout_id = start(fixture).json()["id"]
    response = come_back(
        fixture, checkout_id, django_capture_on_commit_callbacks, customer_key="cus_someone_else"
    )
    assert response.status_code == 400 and fake.requests == []
    assert fixture.client().get(f"/toss/success/{checkout_id}/").status_code == 400  # no authKey at all
    assert (
        fixture.client().get("/toss/success/nope/", {"customerKey": "a", "authKey": "b"}).status_code == 404
    )


def test_a_declined_first_charge_is_a_402_and_no_membership(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    fake.decline = True
    checkout_id = start(fixture).json()["id"]
    declined = come_back(fixture, checkout_id, django_capture_on_commit_callbacks)
    assert declined.status_code == 402 and "잔액부족" in declined.content.decode()
    assert "REJECT_CARD_PAYMENT" in declined.content.decode()
    again = come_back(fixture, checkout_id, django_capture_on_commit_callbacks)  # reload: same answer
    assert again.status_code == 402 and len(fake.charges()) == 1
    process_all(fixture)
    assert membership(fixture) is None
    with tenant_context(fixture.tenant):
        assert not InboxEvent.objects.exists() and not Payment.objects.exists()
    # another card (a new authKey) is a new attempt with a new orderId/Idempotency-Key
    fake.decline = False
    paid = come_back(fixture, checkout_id, django_capture_on_commit_callbacks, auth_key="auth_2")
    assert paid.status_code == 302
    with tenant_context(fixture.tenant):
        sub = EngineSubscription.objects.get()
    assert [c["json"]["orderId"] for c in fake.charges()] == [f"tsub-{sub.id}-1", f"tsub-{sub.id}-1-2"]
    process_all(fixture)
    assert membership(fixture).status == "active"


def test_toss_down_at_checkout_is_a_503_and_reload_retries(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    checkout_id = start(fixture).json()["id"]
    fake.down = True
    assert come_back(fixture, checkout_id, django_capture_on_commit_callbacks).status_code == 503
    fake.down = False
    assert come_back(fixture, checkout_id, django_capture_on_commit_callbacks).status_code == 302
    assert len(fake.billing) == 1 and len({c["json"]["orderId"] for c in fake.charges()}) == 1


def test_a_trial_charges_nothing_until_it_ends(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    with tenant_context(fixture.tenant):
        Price.objects.create(
            tier=Tier.objects.get(code="team"),
            code="team-krw-trial",
            currency="krw",
            unit_amount=25000,
            trial_days=14,
        )
    checkout_id = start(fixture, price="team-krw-trial").json()["id"]
    assert come_back(fixture, checkout_id, django_capture_on_commit_callbacks).status_code == 302
    process_all(fixture)
    assert fake.charges() == [] and membership(fixture).status == "trialing"
    with tenant_context(fixture.tenant):
        sub = EngineSubscription.objects.get()
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(minutes=5)) == 1
    assert [c["json"]["orderId"] for c in fake.charges()] == [f"tsub-{sub.id}-1"]
    assert membership(fixture).status == "active"


# --- the charge job ------------------------------------------------------------------------------


def test_a_due_subscription_is_charged_once_when_the_job_runs_twice(
    toss_shop, django_capture_on_commit_callbacks
):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end - dt.timedelta(hours=1)) == 0
    later = sub.period_end + dt.timedelta(hours=1)
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 1
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 0
    renewal = fake.charges()[1:]
    assert len(renewal) == 1 and renewal[0]["json"]["orderId"] == f"tsub-{sub.id}-2"
    assert renewal[0]["headers"]["idempotency-key"] == f"tsub-{sub.id}-2"
    with tenant_context(fixture.tenant):
        renewed = EngineSubscription.objects.get()
        assert (renewed.period_number, renewed.period_start) == (2, sub.period_end)
        assert renewed.period_end.month == (sub.period_end.month % 12) + 1
        assert Payment.objects.filter(kind="charge").count() == 2
    assert membership(fixture).current_period_end == renewed.period_end


def test_an_answer_lost_in_flight_is_replayed_not_charged_again(
    toss_shop, django_capture_on_commit_callbacks
):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    later = sub.period_end + dt.timedelta(hours=1)
    fake.lose_reply = True  # Toss charged, we never heard: no attempt counted, the row stays pending
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 0
    with tenant_context(fixture.tenant):
        assert EngineCharge.objects.get(period=2).status == "pending"
        assert EngineSubscription.objects.get().failed_attempts == 0
    fake.lose_reply = False
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 1
    assert len(fake.payments) == 2  # the first period and this one: Toss replayed the same key's answer
    assert [c["headers"]["idempotency-key"] for c in fake.charges()[1:]] == [f"tsub-{sub.id}-2"] * 2
    with tenant_context(fixture.tenant):
        assert EngineSubscription.objects.get().period_number == 2


def test_toss_unavailable_counts_no_attempt(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    later = sub.period_end + dt.timedelta(hours=1)
    fake.down = True
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 0
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 0
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert (sub.status, sub.failed_attempts, sub.period_number) == ("active", 0, 1)
    assert membership(fixture).status == "active"
    fake.down = False
    assert run_job(fixture, django_capture_on_commit_callbacks, later) == 1
    assert {c["json"]["orderId"] for c in fake.charges()[1:]} == {f"tsub-{sub.id}-2"}


def test_declines_go_past_due_retry_then_cancel(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    fake.decline = True
    first_failure = sub.period_end + dt.timedelta(hours=1)
    assert run_job(fixture, django_capture_on_commit_callbacks, first_failure) == 1
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert (sub.status, sub.failed_attempts) == ("past_due", 1)
        assert sub.next_retry_at == first_failure + dt.timedelta(days=2)
    assert membership(fixture).status == "past_due"
    assert check(fixture, feature="private_projects").json()["tier"] == "team"  # grace period
    assert run_job(fixture, django_capture_on_commit_callbacks, first_failure + dt.timedelta(days=1)) == 0
    for days, attempts in ((2, 2), (5, 3)):
        assert (
            run_job(fixture, django_capture_on_commit_callbacks, first_failure + dt.timedelta(days=days)) == 1
        )
        with tenant_context(fixture.tenant):
            sub.refresh_from_db()
            assert (sub.status, sub.failed_attempts) == ("past_due", attempts)
    assert run_job(fixture, django_capture_on_commit_callbacks, first_failure + dt.timedelta(days=7)) == 1
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert sub.status == "canceled"
        assert Payment.objects.filter(kind="failed").count() == 4
    assert [c["json"]["orderId"] for c in fake.charges()[1:]] == [
        f"tsub-{sub.id}-2", f"tsub-{sub.id}-2-2", f"tsub-{sub.id}-2-3", f"tsub-{sub.id}-2-4"
    ]  # fmt: skip
    assert membership(fixture).status == "canceled"
    assert check(fixture, feature="private_projects").json()["tier"] == "community"
    assert run_job(fixture, django_capture_on_commit_callbacks, first_failure + dt.timedelta(days=60)) == 0


def test_a_retry_that_pays_recovers(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    fake.decline = True
    first_failure = sub.period_end + dt.timedelta(hours=1)
    run_job(fixture, django_capture_on_commit_callbacks, first_failure)
    fake.decline = False
    assert run_job(fixture, django_capture_on_commit_callbacks, first_failure + dt.timedelta(days=2)) == 1
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert (sub.status, sub.failed_attempts, sub.period_number, sub.next_retry_at) == (
            "active",
            0,
            2,
            None,
        )
    assert membership(fixture).status == "active"


def test_cancel_pause_and_change_follow_our_schedule(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    m = membership(fixture)
    api = fixture.api()
    # change: the next period's price, no charge now
    with django_capture_on_commit_callbacks(execute=True):
        changed = api.post(
            f"/api/v1/memberships/{m.pk}/change", {"price": "pro-krw"}, content_type="application/json"
        )
    assert changed.status_code == 202 and changed.json() == {"applies": "at_period_end"}
    assert len(fake.charges()) == 1
    usd = api.post(
        f"/api/v1/memberships/{m.pk}/change", {"price": "pro-monthly"}, content_type="application/json"
    )
    assert usd.status_code == 400
    # pause: no charges while paused, even long past the period's end
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/memberships/{m.pk}/pause").status_code == 202
    process_all(fixture)
    assert membership(fixture).status == "paused"
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(days=40)) == 0
    assert len(fake.charges()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/memberships/{m.pk}/resume").status_code == 202
    process_all(fixture)
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(days=40)) == 1
    renewal = fake.charges()[-1]["json"]
    assert renewal["amount"] == 59000 and renewal["orderId"] == f"tsub-{sub.id}-2"
    assert membership(fixture).tier.code == "pro"


def test_cancel_at_period_end_stops_renewing(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    m = membership(fixture)
    with django_capture_on_commit_callbacks(execute=True):
        canceled = fixture.api().post(
            f"/api/v1/memberships/{m.pk}/cancel", {"at_period_end": True}, content_type="application/json"
        )
    assert canceled.status_code == 202
    process_all(fixture)
    assert (membership(fixture).status, membership(fixture).cancel_at_period_end) == ("active", True)
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(hours=1)) == 1
    assert len(fake.charges()) == 1  # the first period only
    assert membership(fixture).status == "canceled"
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(days=40)) == 0


def test_cancel_now_ends_at_once(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    m = membership(fixture)
    with django_capture_on_commit_callbacks(execute=True):
        canceled = fixture.api().post(
            f"/api/v1/memberships/{m.pk}/cancel", {"at_period_end": False}, content_type="application/json"
        )
    assert canceled.status_code == 202
    process_all(fixture)
    assert membership(fixture).status == "canceled"
    assert run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(hours=1)) == 0
    assert len(fake.charges()) == 1


def test_portal_is_not_supported(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    subscribe(fixture, fake, django_capture_on_commit_callbacks)
    response = fixture.api().get(f"/api/v1/memberships/{membership(fixture).pk}/portal")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_supported"


def test_the_beat_task_charges_what_is_due(toss_shop, django_capture_on_commit_callbacks, settings):
    from billing.invoicing.tasks import engine_charge_due

    fixture, fake = toss_shop
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    assert settings.CELERY_BEAT_SCHEDULE["engine-charge-due"]["task"] == engine_charge_due.name
    assert "tenant_schemas" not in settings.CELERY_BEAT_SCHEDULE["engine-charge-due"]  # every tenant
    with tenant_context(fixture.tenant), django_capture_on_commit_callbacks(execute=True):
        EngineSubscription.objects.filter(pk=sub.pk).update(
            period_end=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        )
        assert engine_charge_due.apply().get() == 1
        assert engine_charge_due.apply().get() == 0
    assert [c["json"]["orderId"] for c in fake.charges()] == [f"tsub-{sub.id}-1", f"tsub-{sub.id}-2"]


# --- webhooks in ---------------------------------------------------------------------------------


def test_a_refund_confirmed_by_fetch_back_is_recorded_once(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    subscribe(fixture, fake, django_capture_on_commit_callbacks)
    payment_key = next(iter(fake.payments))
    payment = fake.cancel(payment_key)
    # what Toss posts; we trust only what GET /v1/payments/{paymentKey} answers
    posted = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-02T10:00:00.000000",
              "data": {**payment, "status": "DONE", "totalAmount": 1}}  # fmt: skip
    first, second = toss_webhook(fixture, posted), toss_webhook(fixture, posted)
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (second.status_code, second.json()["duplicate"]) == (200, True)
    fetches = [r for r in fake.requests if r["method"] == "GET"]
    assert [r["path"] for r in fetches] == [f"/v1/payments/{payment_key}"] * 2
    assert fetches[0]["headers"]["authorization"].startswith("Basic ")
    process_all(fixture)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        stored = InboxEvent.objects.get(provider="toss", event_type="PAYMENT_STATUS_CHANGED")
        assert stored.payload["data"]["status"] == "CANCELED"  # the fetched object, not the posted one
        refund = Payment.objects.get(kind="refund")
        assert (refund.amount, refund.currency, refund.provider_payment_id) == (
            25000, "krw", payment["cancels"][0]["transactionKey"]
        )  # fmt: skip
        assert refund.membership_id == membership(fixture).pk


def test_a_done_webhook_adds_nothing_to_the_engines_charge(toss_shop, django_capture_on_commit_callbacks):
    fixture, fake = toss_shop
    subscribe(fixture, fake, django_capture_on_commit_callbacks)
    payment_key = next(iter(fake.payments))
    posted = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-02T10:00:00.000",
              "data": {"paymentKey": payment_key, "status": "DONE", "orderId": "x"}}  # fmt: skip
    assert toss_webhook(fixture, posted).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert Payment.objects.filter(kind="charge").count() == 1


@pytest.mark.parametrize("case", ["unknown_payment", "not_our_order", "other_event", "forged_internal"])
def test_unconfirmed_webhooks_are_400_and_store_nothing(toss_shop, django_capture_on_commit_callbacks, case):
    fixture, fake = toss_shop
    subscribe(fixture, fake, django_capture_on_commit_callbacks)
    with tenant_context(fixture.tenant):
        stored_before = InboxEvent.objects.count()
    payload = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-02T10:00:00.000",
               "data": {"paymentKey": "tviva_unknown", "status": "CANCELED", "orderId": "tsub-x-1"}}  # fmt: skip
    headers = {}
    if case == "not_our_order":  # a real payment of this merchant, but not one of our charges
        fake.payments["tviva_shop"] = {
            **next(iter(fake.payments.values())),
            "paymentKey": "tviva_shop",
            "orderId": "shop-1",
        }
        payload["data"]["paymentKey"] = "tviva_shop"
    elif case == "other_event":  # not one of Toss's event types
        payload = {"eventType": "NOT_A_TOSS_EVENT", "createdAt": "2026-11-02T10:00:00.000", "data": {}}
    elif case == "forged_internal":
        payload = {
            "id": "tevt_forged",
            "type": "subscription.canceled",
            "created_at": toss_time(),
            "data": {},
        }
        headers = {
            "HTTP_X_MONETIZE_TOSS_TIMESTAMP": str(int(time.time())),
            "HTTP_X_MONETIZE_TOSS_SIGNATURE": "v1=" + "0" * 64,
        }
    response = fixture.client().post(
        "/webhooks/toss/", json.dumps(payload), content_type="application/json", **headers
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    with tenant_context(fixture.tenant):
        assert InboxEvent.objects.count() == stored_before


@pytest.mark.parametrize(
    "event_type", ["DEPOSIT_CALLBACK", "PAYOUT_STATUS_CHANGED", "METHOD_UPDATED", "CUSTOMER_STATUS_CHANGED"]
)
def test_toss_events_we_do_not_use_are_acknowledged_and_store_nothing(toss_shop, event_type):
    """Item 6: a 4xx would make Toss retry for days; nothing in them is acted on or stored."""
    fixture, _ = toss_shop
    payload = {"eventType": event_type, "createdAt": "2026-11-02T10:00:00.000",
               "data": {"paymentKey": "tviva_x", "status": "DONE", "secret": "ps_x"}}  # fmt: skip
    for _ in range(2):
        response = toss_webhook(fixture, payload)
        assert (response.status_code, response.json()) == (200, {"received": True, "ignored": True})
    with tenant_context(fixture.tenant):
        assert not InboxEvent.objects.exists()


def test_two_partial_cancels_before_either_webhook_are_two_refunds(
    toss_shop, django_capture_on_commit_callbacks
):
    """Item 3: both webhooks fetch back a payment listing both cancels: every cancel is recorded once."""
    fixture, fake = toss_shop
    subscribe(fixture, fake, django_capture_on_commit_callbacks)
    payment_key = next(iter(fake.payments))
    payment = fake.payments[payment_key]
    cancel = {"cancelReason": "고객 요청", "taxExemptionAmount": 0, "canceledAt": toss_time(), "receiptKey": None,
              "easyPayDiscountAmount": 0, "taxFreeAmount": 0, "cancelStatus": "DONE", "cancelRequestId": None}  # fmt: skip
    payment.update(status="PARTIAL_CANCELED", balanceAmount=payment["totalAmount"] - 8000, cancels=[
        {**cancel, "transactionKey": "TX_CANCEL_1", "cancelAmount": 5000, "refundableAmount": payment["totalAmount"] - 5000},
        {**cancel, "transactionKey": "TX_CANCEL_2", "cancelAmount": 3000, "refundableAmount": payment["totalAmount"] - 8000},
    ])  # fmt: skip
    posted = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-02T10:00:00.000000",
              "data": {"paymentKey": payment_key, "status": "PARTIAL_CANCELED"}}  # fmt: skip
    for _ in range(3):
        assert toss_webhook(fixture, posted).status_code == 200
    process_all(fixture)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        refunds = dict(Payment.objects.filter(kind="refund").values_list("provider_payment_id", "amount"))
        assert refunds == {"TX_CANCEL_1": 5000, "TX_CANCEL_2": 3000}


# --- invoices ------------------------------------------------------------------------------------


def test_a_month_of_usage_in_krw_is_invoiced_and_charged_to_the_won(
    toss_shop, django_capture_on_commit_callbacks
):
    """Team in KRW with graduated build minutes: 1,000 free, then ₩10 up to 5,000, then ₩7.5."""
    from billing.invoicing.models import Invoice
    from billing.metering.ingest import events_ingest

    fixture, fake = toss_shop
    with tenant_context(fixture.tenant):
        Price.objects.create(
            tier=Tier.objects.get(code="team"), code="team-minutes-krw", currency="krw", interval="month",
            meter="build-minutes", model="graduated", unit_amount=0,
            tiers=[{"up_to": 1000, "unit_amount": 0}, {"up_to": 5000, "unit_amount": 10},
                   {"up_to": None, "unit_amount_decimal": "7.5"}],
        )  # fmt: skip
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    with tenant_context(fixture.tenant):
        stamp = dt.datetime.now(dt.UTC).isoformat()
        events_ingest(
            events=[{"id": f"b{i}", "customer": "c1", "type": "build.finished", "timestamp": stamp,
                     "properties": {"minutes": m}} for i, m in enumerate((4_000, 2_333))]
        )  # fmt: skip
    run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(hours=1))
    # 6,333 minutes: 1,000 × 0 + 4,000 × ₩10 + 1,333 × ₩7.5 = 40,000 + 9,997.5 → ₩49,998; fee ₩25,000
    renewal = fake.charges()[-1]["json"]
    assert renewal["amount"] == 49_998 + 25_000
    with tenant_context(fixture.tenant):
        first, cycle = Invoice.objects.order_by("id")
        assert (first.total, first.status, first.currency) == (25_000, "paid", "krw")
        usage, fee = cycle.lines.order_by("id")
        assert (usage.amount, usage.description, fee.amount) == (
            49_998,
            "Build minutes: 6,333 minutes",
            25_000,
        )
        assert (cycle.total, cycle.amount_paid, cycle.status) == (74_998, 74_998, "paid")
        assert EngineCharge.objects.get(period=2).invoice_id == cycle.pk
    pdf = fixture.api().get(f"/api/v1/invoices/{cycle.pk}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_cancel_at_period_end_charges_the_last_periods_usage(toss_shop, django_capture_on_commit_callbacks):
    from billing.invoicing.engine import subscription_cancel
    from billing.invoicing.models import Invoice
    from billing.metering.ingest import events_ingest

    fixture, fake = toss_shop
    with tenant_context(fixture.tenant):
        Price.objects.create(tier=Tier.objects.get(code="team"), code="team-minutes-krw", currency="krw",
                             interval="month", meter="build-minutes", model="per_unit", unit_amount=20)  # fmt: skip
    sub = subscribe(fixture, fake, django_capture_on_commit_callbacks)
    with tenant_context(fixture.tenant), django_capture_on_commit_callbacks(execute=True):
        events_ingest(events=[{"id": "b1", "customer": "c1", "type": "build.finished",
                               "timestamp": dt.datetime.now(dt.UTC).isoformat(), "properties": {"minutes": 300}}])  # fmt: skip
        subscription_cancel(subscription_id=sub.id, at_period_end=True)
    process_all(fixture)
    run_job(fixture, django_capture_on_commit_callbacks, sub.period_end + dt.timedelta(hours=1))
    assert fake.charges()[-1]["json"]["amount"] == 6_000  # 300 minutes × ₩20, no next fee
    with tenant_context(fixture.tenant):
        last = Invoice.objects.order_by("id").last()
        assert (last.total, last.status, [line.kind for line in last.lines.all()]) == (
            6_000,
            "paid",
            ["usage"],
        )
        assert EngineSubscription.objects.get().status == "canceled"
    assert membership(fixture).status == "canceled"


def test_a_past_due_customer_registers_another_card_and_the_overdue_period_is_paid(
    toss_shop, django_capture_on_commit_callbacks, monkeypatch
):
    """The plan page's "Update payment method" for a TossPayments plan: Toss's billing-auth window
    registers another card for the same customerKey; the new billing key replaces the old one and
    the overdue period is charged again with it at once."""
    from accounts.roles import Role
    from accounts.services import user_create
    from billing.memberships.portal import membership_state
    from billing.memberships.services import customer_for_user

    fixture, fake = toss_shop
    capture = django_capture_on_commit_callbacks
    with tenant_context(fixture.tenant):
        user = user_create(email="kim@alpha.test", password=None, role=Role.CUSTOMER)
        external_id = customer_for_user(user=user).external_id
    body = {"customer": external_id, "price": "team-krw", "provider": "toss",
            "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"}  # fmt: skip
    checkout_id = fixture.api().post("/api/v1/checkouts", body, content_type="application/json").json()["id"]
    assert come_back(fixture, checkout_id, capture).status_code == 302
    process_all(fixture)
    with tenant_context(fixture.tenant):
        sub = EngineSubscription.objects.get(customer=external_id)
        old_key = sub.billing_key
    fake.decline = True
    failed_at = sub.period_end + dt.timedelta(hours=1)
    assert run_job(fixture, capture, failed_at) == 1
    fake.decline = False
    # a day later (the engine's clock for Toss is real time)
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: failed_at + dt.timedelta(days=1))
    with tenant_context(fixture.tenant):
        plan = Membership.objects.get(customer__external_id=external_id)
        assert plan.status == "past_due"
        assert membership_state(membership=plan)["payment_method_url"] == "/toss/method/"
    client = fixture.client()
    client.force_login(user)
    page = client.get("/toss/method/")
    assert page.status_code == 200 and sub.customer_key in page.content.decode()
    # another customer's authorization is refused and changes nothing
    refused = client.get(
        "/toss/method/done/", {"customerKey": "someone-else", "authKey": "auth_x"}, follow=True
    )
    assert "another customer" in refused.content.decode()
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert sub.billing_key == old_key and sub.status == "past_due"
    with capture(execute=True):
        done = client.get("/toss/method/done/", {"customerKey": sub.customer_key, "authKey": "auth_2"})
    assert done.status_code == 302 and done["Location"].endswith("/account/plan/")
    process_all(fixture)
    assert "overdue payment went through" in client.get("/account/plan/").content.decode()
    with tenant_context(fixture.tenant):
        sub.refresh_from_db()
        assert sub.billing_key != old_key and sub.status == "active" and sub.failed_attempts == 0
        assert Membership.objects.get(pk=plan.pk).status == "active"
    # the window closed: nothing changes, the page says so
    closed = client.get("/toss/method/fail/", {"code": "PAY_PROCESS_CANCELED", "message": "x"}, follow=True)
    assert "your saved card stays" in closed.content.decode()
