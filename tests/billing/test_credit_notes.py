"""Credit notes and refunds (issue 11 item 8): amounts checked by hand, guards that change nothing,
refunds through the provider that collected (the sandbox through its signed events and the inbox,
TossPayments and Stripe at their HTTP edge), a provider that is down retried under one idempotency
key, the provider's webhook of our refund matched (never a second note), a refund made at the
provider turned into one note, concurrency, immutability, the API."""

import datetime as dt
import json
import secrets

import httpx
import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import tenant_context

from billing.events.models import OutboundEvent
from billing.inbox.models import InboxEvent
from billing.inbox.services import inbox_process
from billing.invoicing.credit_notes import credit_note_create, credit_note_refund_retry
from billing.invoicing.exceptions import CreditNoteInvalid, InvoiceStateError
from billing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceStatus
from billing.invoicing.services import (
    LineDraft,
    engine_invoice_ref,
    invoice_draft_create,
    invoice_finalize,
    invoice_payment_apply,
    invoice_void,
)
from billing.invoicing.tasks import credit_note_refund
from billing.memberships.models import Payment
from billing.memberships.services import customer_upsert, payment_record
from billing.providers.base import PaymentState, ProviderUnavailable
from billing.providers.services import provider_account_upsert
from billing.providers.stripe import StripeProvider
from billing.providers.toss import TossProvider
from tests.billing.test_toss import (
    CLIENT_KEY,
    SECRET_KEY,
    FakeToss,
    toss_shop,  # noqa: F401  (a fixture, asked for by name below)
    toss_time,
)

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def shop(in_alpha, monkeypatch):
    """alpha with the sandbox configured, an events endpoint (so events are recorded) and customer ada;
    inbox events are applied by the test (process_inbox), not by a worker."""
    from billing.events.services import endpoint_create

    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    provider_account_upsert(provider="sandbox")
    endpoint_create(url="https://hooks.example.test/in")
    customer_upsert(external_id="ada", email="ada@example.com", name="Ada")
    return in_alpha


def invoice_of(*amounts, currency="usd", paid_by: str | None = "sandbox", charge_id="pay_1", reference=""):
    customer, _ = customer_upsert(external_id="ada")
    draft, _ = invoice_draft_create(
        customer=customer,
        currency=currency,
        lines=[LineDraft(kind="fee", description=f"Line {i}", amount=a) for i, a in enumerate(amounts)],
    )
    invoice = invoice_finalize(invoice_id=draft.pk)
    if paid_by:
        charge(invoice, charge_id, invoice.total, provider=paid_by, reference=reference)
    return Invoice.objects.get(pk=invoice.pk)


def charge(invoice, payment_id, amount, *, provider="sandbox", reference=""):
    return payment_record(
        provider=provider,
        event_type="payment.succeeded",
        payment=PaymentState(
            payment_id=payment_id, amount=amount, currency=invoice.currency, customer="ada",
            invoice=engine_invoice_ref(invoice), reference=reference,
        ),
        occurred_at=NOW,
        event_id=f"evt_{payment_id}",
    )  # fmt: skip


def refund_reported(payment_id, amount, *, reference, provider="stripe", currency="usd", customer=""):
    return payment_record(
        provider=provider,
        event_type="refund.created",
        payment=PaymentState(
            payment_id=payment_id, amount=amount, currency=currency, customer=customer, reference=reference
        ),
        occurred_at=NOW,
        event_id=f"evt_{payment_id}",
    )


def process_inbox():
    for inbox_id in InboxEvent.objects.order_by("id").values_list("id", flat=True):
        inbox_process(inbox_id=inbox_id)


def events(kind):
    return list(
        OutboundEvent.objects.filter(type=kind).order_by("created_at", "id").values_list("payload", flat=True)
    )


def state(invoice):
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid, invoice.amount_credited, invoice.amount_due


# --- amounts by hand --------------------------------------------------------------------------------


def test_a_paid_invoice_credited_out_of_band_by_line_and_by_amount(shop):
    invoice = invoice_of(4000, 900)  # 49.00 paid through the sandbox
    fee, seats = invoice.lines.order_by("id")
    # when: the seats line in full, then 10.00 of the rest
    first = credit_note_create(
        invoice_id=invoice.pk, lines=[{"line": seats.pk, "amount": 900}], reason="order_change"
    )
    second = credit_note_create(invoice_id=invoice.pk, amount=1000, memo="goodwill")
    # then
    assert (first.number, first.amount, first.credit_amount, first.refund_amount, first.pre_payment_amount) == (
        f"{invoice.number}-CN1", 900, 900, 0, 0,
    )  # fmt: skip
    assert [(line.invoice_line_id, line.amount) for line in first.lines.all()] == [(seats.pk, 900)]
    assert (second.number, second.amount, second.credit_amount, second.status) == (
        f"{invoice.number}-CN2", 1000, 1000, "issued",
    )  # fmt: skip
    assert state(invoice) == ("paid", 4900, 1900, 0)
    # a line is never credited above its amount; the rest of the invoice above what was paid back
    with pytest.raises(CreditNoteInvalid) as over_line:
        credit_note_create(invoice_id=invoice.pk, lines=[{"line": seats.pk, "amount": 1}])
    assert over_line.value.code == "credit_exceeds_line"
    with pytest.raises(CreditNoteInvalid) as over_paid:
        credit_note_create(invoice_id=invoice.pk, amount=3001)  # 4900 - 1900 = 3000 left
    assert over_paid.value.code == "credit_exceeds_paid" and over_paid.value.details["refundable"] == 3000
    assert state(invoice) == ("paid", 4900, 1900, 0) and CreditNote.objects.count() == 2
    created = events("credit_note.created")
    assert [(e["number"], e["amount"], e["credit_amount"]) for e in created] == [
        (first.number, 900, 900), (second.number, 1000, 1000),
    ]  # fmt: skip


def test_a_credit_note_on_an_open_invoice_lowers_what_is_due_and_settles_it(shop):
    invoice = invoice_of(4900, paid_by=None)
    invoice_payment_apply(invoice_id=invoice.pk, amount=900)  # 49.00 billed, 9.00 paid, 40.00 due
    note = credit_note_create(invoice_id=invoice.pk, amount=1500, reason="product_unsatisfactory")
    assert (note.pre_payment_amount, note.refund_amount, note.credit_amount) == (1500, 0, 0)
    assert state(invoice) == ("open", 900, 1500, 2500)
    with pytest.raises(CreditNoteInvalid) as over_due:
        credit_note_create(invoice_id=invoice.pk, amount=2501)
    assert over_due.value.code == "credit_exceeds_due"
    with pytest.raises(CreditNoteInvalid) as refund_unpaid:
        credit_note_create(invoice_id=invoice.pk, amount=100, refund=True)
    assert refund_unpaid.value.code == "invoice_not_paid"
    assert not events("invoice.paid")
    # when: the rest of what is due is credited, the invoice is settled
    credit_note_create(invoice_id=invoice.pk, amount=2500)
    assert state(invoice) == ("paid", 900, 4000, 0)
    assert len(events("invoice.paid")) == 1
    # and what was paid can still go back, no more
    with pytest.raises(CreditNoteInvalid) as over:
        credit_note_create(invoice_id=invoice.pk, amount=901)
    assert over.value.code == "credit_exceeds_paid"
    credit_note_create(invoice_id=invoice.pk, amount=900)
    assert state(invoice) == ("paid", 900, 4900, 0)


def test_draft_and_void_invoices_refuse_credit_notes(shop):
    customer, _ = customer_upsert(external_id="ada")
    draft, _ = invoice_draft_create(
        customer=customer, currency="usd", lines=[LineDraft(kind="fee", description="x", amount=100)]
    )
    void = invoice_void(invoice_id=invoice_of(500, paid_by=None).pk)
    for invoice in (draft, void):
        with pytest.raises(InvoiceStateError):
            credit_note_create(invoice_id=invoice.pk, amount=100)
    assert not CreditNote.objects.exists()


def test_the_database_refuses_changing_or_deleting_an_issued_credit_note(shop):
    note = credit_note_create(invoice_id=invoice_of(4900).pk, amount=100)
    for change in (
        lambda: CreditNote.objects.filter(pk=note.pk).update(amount=50, credit_amount=50),
        lambda: CreditNote.objects.filter(pk=note.pk).update(memo="edited"),
        lambda: CreditNote.objects.filter(pk=note.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    CreditNote.objects.filter(pk=note.pk).update(refund_error="status and refund details may move")


# --- refunds through the sandbox (its signed events and the inbox) ------------------------------------


def test_a_partial_refund_twice_is_two_refunds_and_two_credit_notes(shop, django_capture_on_commit_callbacks):
    invoice = invoice_of(4900)
    with django_capture_on_commit_callbacks(execute=True):  # the sandbox's refund events reach the inbox
        first = credit_note_create(invoice_id=invoice.pk, amount=1000, refund=True, reason="duplicate")
    with django_capture_on_commit_callbacks(execute=True):
        second = credit_note_create(invoice_id=invoice.pk, amount=1500, refund=True)
    assert (first.status, first.refund_amount, first.provider) == ("refunded", 1000, "sandbox")
    assert (
        first.provider_refund_id.startswith("re_") and first.provider_refund_id != second.provider_refund_id
    )
    assert first.payment.provider_payment_id == "pay_1"
    # when: the provider's webhooks of both refunds are applied, twice
    process_inbox()
    process_inbox()
    # then: two refunds recorded, each linked to its own note; no third note
    refunds = Payment.objects.filter(kind="refund").order_by("amount")
    assert [(r.amount, r.provider_payment_id) for r in refunds] == [
        (1000, first.provider_refund_id), (1500, second.provider_refund_id),
    ]  # fmt: skip
    assert [r.credit_note.pk for r in refunds] == [first.pk, second.pk]
    assert CreditNote.objects.count() == 2 and state(invoice) == ("paid", 4900, 2500, 0)
    # and no more than what is left goes back
    response = shop.api().post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"amount": 2401, "refund": True},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "credit_exceeds_paid"
    assert response.json()["error"]["details"]["refundable"] == 2400


def test_a_refund_made_at_the_provider_issues_one_credit_note(shop):
    invoice = invoice_of(4900, paid_by="stripe", charge_id="in_1", reference="ch_1")
    # when: staff refund 15.00 in Stripe's dashboard; refund.created and charge.refunded both report it
    refund_reported("re_dash", 1500, reference="ch_1")
    refund_reported("re_dash", 1500, reference="ch_1")
    stripe_event = {
        "id": "evt_charge_refunded", "type": "charge.refunded", "created": 1_790_000_000,
        "data": {"object": {"id": "ch_1", "object": "charge", "currency": "usd", "payment_intent": "pi_1",
                            "refunds": {"data": [{"id": "re_dash", "amount": 1500, "currency": "usd",
                                                  "charge": "ch_1", "status": "succeeded"}]}}},
    }  # fmt: skip
    parsed = StripeProvider(webhook_secret="whsec_x").parse_event(stripe_event)
    payment_record(provider="stripe", event_type=parsed.type, payment=parsed.payment,
                   occurred_at=parsed.occurred_at, event_id=parsed.event_id)  # fmt: skip
    # then
    note = CreditNote.objects.get()
    assert (note.origin, note.reason, note.status, note.refund_amount, note.provider_refund_id) == (
        "provider", "other", "refunded", 1500, "re_dash",
    )  # fmt: skip
    assert (
        note.refund_payment == Payment.objects.get(kind="refund")
        and note.payment.provider_payment_id == "in_1"
    )
    assert state(invoice) == ("paid", 4900, 1500, 0)
    assert [e["origin"] for e in events("credit_note.created")] == ["provider"]
    # a refund of a charge that paid no invoice of ours issues nothing
    refund_reported("re_other", 100, reference="ch_unknown", customer="ada")
    assert CreditNote.objects.count() == 1


# --- TossPayments at its HTTP edge: down, lost answers, retries under one key -----------------------


class FakeTossCancels(FakeToss):
    """FakeToss with Toss's cancel API (`POST /v1/payments/{paymentKey}/cancel`)."""

    refuse = False

    def route(self, method, path, body):
        if method == "POST" and path.startswith("/v1/payments/") and path.endswith("/cancel"):
            payment = self.payments.get(path.split("/")[3])
            if payment is None:
                return 404, {"code": "NOT_FOUND_PAYMENT", "message": "존재하지 않는 결제 입니다."}
            amount = body["cancelAmount"]
            if self.refuse or amount > payment["balanceAmount"]:
                return 403, {"code": "NOT_CANCELABLE_AMOUNT", "message": "취소 할 수 없는 금액 입니다."}
            cancel = {"transactionKey": secrets.token_hex(16).upper(), "cancelReason": body["cancelReason"],
                      "canceledAt": toss_time(), "cancelAmount": amount, "cancelStatus": "DONE",
                      "refundableAmount": payment["balanceAmount"] - amount}  # fmt: skip
            payment["cancels"] = [*(payment["cancels"] or []), cancel]
            payment["balanceAmount"] -= amount
            payment["status"] = "CANCELED" if payment["balanceAmount"] == 0 else "PARTIAL_CANCELED"
            return 200, json.loads(json.dumps(payment))
        return super().route(method, path, body)

    def cancel_calls(self):
        return [r for r in self.requests if r["path"].endswith("/cancel")]


@pytest.fixture
def toss(shop, monkeypatch):
    """A KRW invoice of 25,000 won paid by a Toss charge (its Payment at the fake Toss)."""
    fake = FakeTossCancels()
    monkeypatch.setattr(TossProvider, "http_transport", httpx.MockTransport(fake))
    provider_account_upsert(provider="toss", credentials={"client_key": CLIENT_KEY, "secret_key": SECRET_KEY})
    payment_key = "tviva" + secrets.token_hex(16)
    fake.payments[payment_key] = {
        "paymentKey": payment_key, "orderId": "tsub-sub_1-1", "status": "DONE", "currency": "KRW",
        "totalAmount": 25000, "balanceAmount": 25000, "cancels": None, "approvedAt": toss_time(),
    }  # fmt: skip
    invoice = invoice_of(25000, currency="krw", paid_by="toss", charge_id=payment_key)
    return invoice, fake, payment_key


def test_toss_down_then_retried_refunds_once_under_one_key(
    shop, toss, django_capture_on_commit_callbacks, monkeypatch
):
    invoice, fake, payment_key = toss
    retries = []
    monkeypatch.setattr(
        "billing.invoicing.credit_notes._common._enqueue_retry", lambda pk, countdown=None: retries.append(pk)
    )
    # given: Toss takes the cancel but the answer is lost (a timeout): we cannot know it refunded
    fake.lose_reply = True
    with django_capture_on_commit_callbacks(execute=True):
        response = shop.api().post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"amount": 10000, "refund": True, "reason": "order_change"},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["refund_amount"], body["provider_refund_id"]) == (
        "refund_pending",
        10000,
        "",
    )
    assert retries == [body["id"]]  # the retry task is enqueued on commit
    assert state(invoice) == ("paid", 25000, 10000, 0)  # credited at once; the refund is on its way
    # when: the retry task runs while Toss is down, then again once it answers
    fake.lose_reply, fake.down = False, True
    with pytest.raises(ProviderUnavailable):
        credit_note_refund_retry(credit_note_id=body["id"])
    fake.down = False
    credit_note_refund.apply(args=[body["id"]]).get()
    # then: every call carried the same key, Toss refunded once, the note holds Toss's cancel
    keys = {call["headers"]["idempotency-key"] for call in fake.cancel_calls()}
    assert keys == {f"creditnote-{body['id']}"} and len(fake.cancel_calls()) == 3
    assert [c["cancelAmount"] for c in fake.payments[payment_key]["cancels"]] == [10000]
    note = CreditNote.objects.get(pk=body["id"])
    assert (note.status, note.provider_refund_id) == (
        "refunded", fake.payments[payment_key]["cancels"][0]["transactionKey"],
    )  # fmt: skip
    # a retry after success asks Toss nothing
    credit_note_refund_retry(credit_note_id=note.pk)
    assert len(fake.cancel_calls()) == 3
    # and Toss's PAYMENT_STATUS_CHANGED of that cancel (fetched back) issues no second note
    toss_webhook_applied(fake.payments[payment_key])
    assert CreditNote.objects.count() == 1 and Payment.objects.filter(kind="refund").count() == 1
    assert CreditNote.objects.get().refund_payment.amount == 10000


def test_the_providers_webhook_before_our_retry_completes_the_pending_note(toss):
    invoice, fake, payment_key = toss
    fake.lose_reply = True
    note = credit_note_create(invoice_id=invoice.pk, amount=5000, refund=True)
    assert note.status == "refund_pending"
    # when: Toss's webhook of the cancel arrives first
    fake.lose_reply = False
    toss_webhook_applied(fake.payments[payment_key])
    # then: the pending note is the one refunded (matched by charge and amount), and the retry asks nothing
    note.refresh_from_db()
    assert note.status == "refunded" and note.refund_payment is not None
    assert credit_note_refund_retry(credit_note_id=note.pk).status == "refunded"
    assert len(fake.cancel_calls()) == 1 and CreditNote.objects.count() == 1


def test_a_refund_the_provider_refuses_issues_nothing(shop, toss):
    invoice, fake, _ = toss
    fake.refuse = True
    response = shop.api().post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"amount": 1000, "refund": True},
        content_type="application/json",
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "refund_refused"
    assert response.json()["error"]["details"]["toss_code"] == "NOT_CANCELABLE_AMOUNT"
    assert not CreditNote.objects.exists() and state(invoice) == ("paid", 25000, 0, 0)


def test_a_retried_refund_the_provider_then_refuses_is_refund_failed_and_announced(toss):
    invoice, fake, _ = toss
    fake.down = True
    note = credit_note_create(invoice_id=invoice.pk, amount=1000, refund=True)
    fake.down, fake.refuse = False, True
    assert credit_note_refund.apply(args=[note.pk]).get() == "refund_failed"
    note.refresh_from_db()
    assert note.status == "refund_failed"
    assert note.refund_error.startswith("TossPayments refused")
    assert [e["status"] for e in events("credit_note.refund_failed")] == ["refund_failed"]
    assert state(invoice) == ("paid", 25000, 1000, 0)  # the credit stands: staff settle it by hand


def toss_webhook_applied(fetched_payment):
    parsed = TossProvider(credentials={"secret_key": SECRET_KEY}).parse_event(
        {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": toss_time(), "data": fetched_payment,
         "monetize": {"customer": "ada"}}
    )  # fmt: skip
    for payment in [parsed.payment, *parsed.more_payments]:
        payment_record(provider="toss", event_type=parsed.type, payment=payment,
                       occurred_at=parsed.occurred_at, event_id=parsed.event_id)  # fmt: skip


# --- Stripe at its HTTP edge (Polar, Lemon Squeezy: test_provider_refunds.py) --------------------------------------------


def test_stripe_refund_names_the_charge_amount_reason_and_our_idempotency_key(shop, monkeypatch):
    import stripe

    sent = []

    class FakeStripeRefunds(stripe.HTTPClient):
        name = "fake"

        def request(self, method, url, headers, post_data=None, *, _usage=None):
            from urllib.parse import parse_qs, urlsplit

            if method == "get":  # the adapter first looks for a refund made with our key
                return (
                    json.dumps({"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"}),
                    200,
                    {},
                )
            form = parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))
            sent.append((method, urlsplit(url).path, form, dict(headers or {})))
            return json.dumps({"id": "re_123", "object": "refund", "amount": int(form["amount"][0]),
                               "status": "succeeded", "currency": "usd"}), 200, {}  # fmt: skip

    monkeypatch.setattr(StripeProvider, "http_client", FakeStripeRefunds())
    provider_account_upsert(provider="stripe", credentials={"api_key": "sk_test_x"}, webhook_secret="whsec_x")
    invoice = invoice_of(4900, paid_by="stripe", charge_id="in_1", reference="ch_1")
    note = credit_note_create(invoice_id=invoice.pk, amount=1200, refund=True, reason="fraudulent")
    assert (note.status, note.provider_refund_id) == ("refunded", "re_123")
    (method, path, form, headers), = sent  # fmt: skip
    assert (method, path) == ("post", "/v1/refunds")
    assert (form["charge"], form["amount"], form["reason"]) == (["ch_1"], ["1200"], ["fraudulent"])
    assert headers["Idempotency-Key"] == f"creditnote-{note.pk}"
    # its webhook later: the same refund id, no second note
    refund_reported("re_123", 1200, reference="ch_1")
    assert (
        CreditNote.objects.count() == 1
        and CreditNote.objects.get().refund_payment.provider_payment_id == "re_123"
    )


# --- concurrency ----------------------------------------------------------------------------------


def test_concurrent_credit_notes_never_over_credit(live_tenant):
    from tests.helpers import committed, run_parallel

    def setup():
        with tenant_context(live_tenant.tenant):
            customer, _ = customer_upsert(external_id="ada")
            draft, _ = invoice_draft_create(
                customer=customer, currency="usd", lines=[LineDraft(kind="fee", description="x", amount=1000)]
            )
            return invoice_finalize(invoice_id=draft.pk).pk

    invoice_id = committed(setup)

    def credit(i):
        with tenant_context(live_tenant.tenant):
            try:
                return credit_note_create(invoice_id=invoice_id, amount=300).number
            except CreditNoteInvalid as exc:
                return exc.code

    outcomes = run_parallel(credit, 6)

    def read():
        with tenant_context(live_tenant.tenant):
            invoice = Invoice.objects.get(pk=invoice_id)
            return (
                invoice.amount_credited,
                invoice.status,
                sorted(CreditNote.objects.values_list("sequence", flat=True)),
            )

    assert sorted(o for o in outcomes if "-CN" not in o) == ["credit_exceeds_due"] * 3
    assert committed(read) == (900, InvoiceStatus.OPEN, [1, 2, 3])


# --- API --------------------------------------------------------------------------------------------


def test_api_issues_lists_and_shows_credit_notes_once_per_idempotency_key(shop):
    invoice = invoice_of(4000, 900)
    seats = invoice.lines.order_by("id").last()
    api = shop.api()
    url = f"/api/v1/invoices/{invoice.pk}/credit-notes"
    body = {"lines": [{"line": seats.pk, "amount": 400}], "reason": "order_change", "memo": "one seat fewer"}
    first = api.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="cn-1")
    again = api.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="cn-1")
    assert first.status_code == 201 and again.status_code == 201, first.content
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    note = first.json()
    assert {k: note[k] for k in ("number", "amount", "credit_amount", "refund_amount", "reason", "status", "origin")} == {
        "number": f"{invoice.number}-CN1", "amount": 400, "credit_amount": 400, "refund_amount": 0,
        "reason": "order_change", "status": "issued", "origin": "portal",
    }  # fmt: skip
    assert note["lines"] == [
        {"id": note["lines"][0]["id"], "invoice_line": seats.pk, "description": "Line 1", "amount": 400}
    ]
    assert CreditNote.objects.count() == 1 and CreditNoteLine.objects.count() == 1
    listed = api.get(url).json()
    assert [n["id"] for n in listed["results"]] == [note["id"]] and listed["next"] is None
    assert api.get(f"/api/v1/credit-notes/{note['id']}").json() == note
    shown = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert shown["amount_credited"] == 400
    assert [(n["number"], n["amount"]) for n in shown["credit_notes"]] == [(note["number"], 400)]


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "invalid_request"),
        ({"amount": 100, "lines": [{"line": 1, "amount": 1}]}, "invalid_request"),
        ({"amount": "100"}, "invalid_request"),
        ({"amount": 1.5}, "invalid_request"),
        ({"amount": 0}, "invalid_request"),
        ({"amount": 100, "reason": "because"}, "invalid_request"),
        ({"lines": [{"line": 999999, "amount": 1}]}, "unknown_invoice_line"),
        ({"amount": 4901}, "credit_exceeds_paid"),
    ],
)
def test_api_bad_input_is_a_400_and_changes_nothing(shop, body, code):
    invoice = invoice_of(4900)
    response = shop.api().post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes", body, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == code, response.content
    assert not CreditNote.objects.exists() and state(invoice) == ("paid", 4900, 0, 0)


def test_api_credit_notes_of_another_tenant_or_unknown_are_404(shop, beta):
    invoice = invoice_of(4900)
    note = credit_note_create(invoice_id=invoice.pk, amount=100)
    other = beta.api()
    assert other.get(f"/api/v1/credit-notes/{note.pk}").status_code == 404
    assert other.get(f"/api/v1/invoices/{invoice.pk}/credit-notes").status_code == 404
    response = other.post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes", {"amount": 1}, content_type="application/json"
    )
    assert response.status_code == 404
    assert shop.api().get("/api/v1/credit-notes/999999").json()["error"]["code"] == "unknown_credit_note"
    with tenant_context(shop.tenant):
        assert CreditNote.objects.count() == 1


def test_invoice_pdf_lists_its_credit_notes(shop):
    from tests.billing.test_invoices import _pdf_text

    invoice = invoice_of(4900)
    note = credit_note_create(invoice_id=invoice.pk, amount=1250, reason="duplicate")
    text = _pdf_text(shop.api().get(f"/api/v1/invoices/{invoice.pk}/pdf").content)
    assert "Credited" in text and "Credit notes" in text and note.number in text and "12.50" in text


# --- end to end: engine-collected invoices, refunded through the engine's provider ------------------


def test_a_sandbox_invoice_paid_at_checkout_is_partly_refunded_as_a_credit_note(
    alpha, monkeypatch, django_capture_on_commit_callbacks
):
    from tests.billing.test_period_close import invoices, subscribe
    from tests.billing.test_period_close import shop as period_shop
    from tests.billing.test_webhooks_in import process_all

    shop = period_shop.__wrapped__(alpha, monkeypatch)
    subscribe(shop, django_capture_on_commit_callbacks)
    [invoice] = invoices(shop)
    assert (invoice.total, invoice.status) == (2900, "paid")
    # when: 10.00 back through the sandbox, the API answering at once; then the sandbox's event applied
    with django_capture_on_commit_callbacks(execute=True):
        response = shop.api().post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"amount": 1000, "reason": "product_unsatisfactory", "refund": True},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["refund_amount"]) == ("refunded", 1000)
    process_all(shop)
    process_all(shop)
    with tenant_context(shop.tenant):
        refund = Payment.objects.get(kind="refund")
        charge = Payment.objects.get(kind="charge")
        assert (refund.amount, refund.reference, refund.membership_id) == (
            1000, charge.provider_payment_id, charge.membership_id,
        )  # fmt: skip
        assert CreditNote.objects.get().refund_payment == refund
        assert state(invoice) == ("paid", 2900, 1000, 0)
    shown = shop.api().get(f"/api/v1/invoices/{invoice.pk}").json()
    assert shown["amount_credited"] == 1000 and len(shown["credit_notes"]) == 1


def test_a_toss_invoice_in_krw_is_partly_refunded_through_tosss_cancel_api(
    db, request, monkeypatch, django_capture_on_commit_callbacks
):
    import tests.billing.test_toss as toss_tests

    monkeypatch.setattr(toss_tests, "FakeToss", FakeTossCancels)
    fixture, fake = request.getfixturevalue("toss_shop")  # its FakeToss is now FakeTossCancels
    toss_tests.subscribe(fixture, fake, django_capture_on_commit_callbacks)
    with tenant_context(fixture.tenant):
        invoice = Invoice.objects.get()
    assert (invoice.total, invoice.currency, invoice.status) == (25000, "krw", "paid")
    payment_key = next(iter(fake.payments))
    response = fixture.api().post(
        f"/api/v1/invoices/{invoice.pk}/credit-notes",
        {"amount": 7000, "refund": True},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    cancel = fake.cancel_calls()[0]
    assert (cancel["path"], cancel["json"]["cancelAmount"]) == (f"/v1/payments/{payment_key}/cancel", 7000)
    assert cancel["headers"]["idempotency-key"] == f"creditnote-{response.json()['id']}"
    # Toss's PAYMENT_STATUS_CHANGED (fetched back) records the refund once, linked to the note
    posted = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-02T10:00:00.000000",
              "data": {"paymentKey": payment_key, "status": "PARTIAL_CANCELED"}}  # fmt: skip
    assert toss_tests.toss_webhook(fixture, posted).status_code == 200
    toss_tests.process_all(fixture)
    with tenant_context(fixture.tenant):
        refund = Payment.objects.get(kind="refund")
        note = CreditNote.objects.get()
        assert (refund.amount, refund.currency, note.refund_payment_id, note.status) == (
            7000,
            "krw",
            refund.pk,
            "refunded",
        )
        assert state(invoice) == ("paid", 25000, 7000, 0)


def test_stripe_refund_against_localstripe_with_the_real_sdk(localstripe):
    """localstripe keeps payment intents and refunds: the adapter's refund is a real Refund of the
    intent, and partial twice is two refunds (localstripe ignores idempotency keys: the key is
    checked at the HTTP edge above)."""
    import stripe

    client = stripe.StripeClient("sk_test_localstripe", base_addresses={"api": localstripe})
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    intent = client.v1.payment_intents.create(
        params={
            "amount": 4900,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": card.id,
            "confirm": True,
        }
    )
    assert intent.status == "succeeded"
    adapter = StripeProvider(webhook_secret="whsec_x", api_key="sk_test_localstripe", api_base=localstripe)
    first = adapter.refund(
        payment_id=intent.id, amount=1000, currency="usd", idempotency_key="creditnote-1", reason="other"
    )
    second = adapter.refund(
        payment_id=intent.id,
        amount=1500,
        currency="usd",
        idempotency_key="creditnote-2",
        reason="order_change",
    )
    assert first.refund_id.startswith("re_") and first.refund_id != second.refund_id
    assert (first.amount, second.amount) == (1000, 1500)
    # a retry of the first a day later (Stripe has forgotten the idempotency key): found, not repeated
    again = adapter.refund(
        payment_id=intent.id, amount=1000, currency="usd", idempotency_key="creditnote-1", reason="other"
    )
    assert again.refund_id == first.refund_id
    refunds = client.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert sorted(r.amount for r in refunds) == [1000, 1500]


def test_two_provider_invoices_with_the_same_number_each_take_their_first_credit_note(shop):
    """A provider's numbers may repeat (a Lemon Squeezy test and live store; two providers): credit
    note numbers are unique per invoice, not across invoices."""
    customer, _ = customer_upsert(external_id="ada")
    notes = []
    for provider_id in ("ord_1", "ord_2"):
        invoice = Invoice.objects.create(
            customer=customer, currency="usd", status="paid", number="1001", subtotal=500, total=500,
            amount_paid=500, collected_by="provider", provider="lemonsqueezy", provider_invoice_id=provider_id,
        )  # fmt: skip
        notes.append(credit_note_create(invoice_id=invoice.pk, amount=200, reason="other"))
    assert [note.number for note in notes] == ["1001-CN1", "1001-CN1"]
