"""Refunds through Polar and Lemon Squeezy, at their HTTP edges: a credit note with refund=true on an
invoice they collected refunds through them, once however often it is retried, and their webhook
of that refund issues no second note."""

import httpx
import pytest

from billing.invoicing.credit_notes import credit_note_create
from billing.invoicing.models import CreditNote
from billing.memberships.services import payment_record
from billing.providers.base import PaymentState, ProviderUnavailable
from billing.providers.lemonsqueezy import LemonSqueezyProvider
from billing.providers.polar import PolarProvider
from billing.providers.services import provider_account_upsert
from tests.billing.test_credit_notes import NOW, invoice_of, refund_reported, state
from tests.billing.test_credit_notes import shop as credit_notes_shop


class FakePolarRefunds:
    def __init__(self):
        self.refunds, self.calls, self.down = [], [], False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        self.calls.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectTimeout("down", request=request)
        if request.method == "GET" and request.url.path == "/v1/refunds/":
            order = request.url.params.get("order_id")
            items = [r for r in self.refunds if r["order_id"] == order]
            return httpx.Response(
                200, json={"items": items, "pagination": {"total_count": len(items), "max_page": 1}}
            )
        if request.method == "POST" and request.url.path == "/v1/refunds/":
            body = json.loads(request.content)
            refund = {
                "created_at": "2026-12-02T10:00:00Z", "modified_at": None, "id": f"r_{len(self.refunds) + 1}",
                "metadata": body.get("metadata") or {}, "status": "succeeded", "reason": body["reason"],
                "amount": body["amount"], "tax_amount": 0, "currency": "usd", "organization_id": "org_1",
                "order_id": body["order_id"], "subscription_id": None, "customer_id": "cus_1",
                "revoke_benefits": False, "dispute": None,
            }  # fmt: skip
            self.refunds.append(refund)
            return httpx.Response(201, json=refund)
        return httpx.Response(404, json={"error": "ResourceNotFound", "detail": request.url.path})


@pytest.fixture
def shop(in_alpha, monkeypatch):
    return credit_notes_shop.__wrapped__(in_alpha, monkeypatch)


@pytest.fixture
def polar(shop, monkeypatch):
    fake = FakePolarRefunds()
    monkeypatch.setattr(PolarProvider, "http_transport", httpx.MockTransport(fake))
    provider_account_upsert(
        provider="polar", credentials={"access_token": "polar_oat_x"}, webhook_secret="whsec_x"
    )
    return fake


def test_a_polar_refund_is_made_once_and_its_webhook_issues_no_second_note(polar):
    invoice = invoice_of(4900, paid_by="polar", charge_id="order_1")
    note = credit_note_create(
        invoice_id=invoice.pk, amount=1200, refund=True, reason="product_unsatisfactory"
    )
    assert (note.status, note.provider_refund_id) == ("refunded", "refund:r_1")
    [refund] = polar.refunds
    assert (refund["order_id"], refund["amount"], refund["reason"]) == (
        "order_1",
        1200,
        "satisfaction_guarantee",
    )
    assert refund["metadata"] == {"monetize_refund": f"creditnote-{note.pk}"}
    # a retry of the same note (its answer lost) finds the refund instead of refunding again
    adapter = PolarProvider(access_token="polar_oat_x", webhook_secret="whsec_x")
    again = adapter.refund(payment_id="order_1", amount=1200, currency="usd",
                           idempotency_key=f"creditnote-{note.pk}", reason="other")  # fmt: skip
    assert again.refund_id == "refund:r_1" and len(polar.refunds) == 1
    # Polar's refund.created later names the same refund
    refund_reported("refund:r_1", 1200, reference="order_1", provider="polar")
    assert CreditNote.objects.count() == 1
    assert CreditNote.objects.get().refund_payment.provider_payment_id == "refund:r_1"
    assert state(invoice) == ("paid", 4900, 1200, 0)


def test_polar_down_leaves_the_refund_pending_and_a_retry_makes_it_once(polar):
    from billing.invoicing.credit_notes import credit_note_refund_retry

    invoice = invoice_of(4900, paid_by="polar", charge_id="order_1")
    polar.down = True
    note = credit_note_create(invoice_id=invoice.pk, amount=500, refund=True)
    assert note.status == "refund_pending" and polar.refunds == []
    polar.down = False
    for _ in range(2):
        credit_note_refund_retry(credit_note_id=note.pk)
    note.refresh_from_db()
    assert note.status == "refunded" and [r["amount"] for r in polar.refunds] == [500]


class FakeLemonSqueezyRefunds:
    def __init__(self):
        self.refunded = {}  # (resource, id) -> cumulative refunded amount
        self.posts, self.down_after_post = [], False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        parts = request.url.path.strip("/").split("/")  # v1, resource, id[, refund]
        key = (parts[1], parts[2])
        if request.method == "POST" and parts[-1] == "refund":
            amount = json.loads(request.content)["data"]["attributes"]["amount"]
            self.refunded[key] = self.refunded.get(key, 0) + amount
            self.posts.append((parts[1], parts[2], amount))
            if self.down_after_post:  # refunded, but the answer is lost
                raise httpx.ReadTimeout("lost", request=request)
        doc = {
            "data": {
                "type": parts[1],
                "id": parts[2],
                "attributes": {"refunded_amount": self.refunded.get(key, 0)},
            }
        }
        return httpx.Response(200, json=doc)


@pytest.fixture
def lemonsqueezy(shop, monkeypatch):
    fake = FakeLemonSqueezyRefunds()
    monkeypatch.setattr(LemonSqueezyProvider, "http_transport", httpx.MockTransport(fake))
    provider_account_upsert(
        provider="lemonsqueezy", credentials={"api_key": "ls_key", "store_id": "1"}, webhook_secret="whsec_ls"
    )
    return fake


def test_lemon_squeezy_refunds_partially_twice_and_a_lost_answer_is_not_refunded_again(lemonsqueezy):
    invoice = invoice_of(4900, paid_by="lemonsqueezy", charge_id="order:42", reference="order:42")
    first = credit_note_create(invoice_id=invoice.pk, amount=1000, refund=True)
    assert (first.status, first.provider_refund_id) == ("refunded", "refunded_total:order:42:1000")
    lemonsqueezy.down_after_post = True  # the second refund happens, its answer is lost
    second = credit_note_create(invoice_id=invoice.pk, amount=1000, refund=True)
    assert second.status == "refund_pending"
    lemonsqueezy.down_after_post = False
    from billing.invoicing.credit_notes import credit_note_refund_retry

    credit_note_refund_retry(credit_note_id=second.pk)
    second.refresh_from_db()
    assert second.status == "refunded"
    assert lemonsqueezy.posts == [("orders", "42", 1000), ("orders", "42", 1000)]  # two refunds, not three
    # Lemon Squeezy's order_refunded then reports the cumulative 2,000: no note issued by itself
    payment_record(
        provider="lemonsqueezy", event_type="refund.created",
        payment=PaymentState(payment_id="refunded:order:42", reference="order:42", refunded_total=2000,
                             amount=2000, currency="usd", customer="ada"),
        occurred_at=NOW, event_id="evt_ls_refunded",
    )  # fmt: skip
    assert CreditNote.objects.count() == 2 and state(invoice) == ("paid", 4900, 2000, 0)


def test_lemon_squeezy_refunds_only_orders_and_subscription_invoices(lemonsqueezy):
    adapter = LemonSqueezyProvider(webhook_secret="x", api_key="k", store_id="1")
    with pytest.raises(Exception) as refused:
        adapter.refund(payment_id="sub_9", amount=100, currency="usd", idempotency_key="k", reason="other")
    assert getattr(refused.value, "code", "") == "not_refundable"
    result = adapter.refund(
        payment_id="invoice:7", amount=300, currency="usd", idempotency_key="k", reason="other"
    )
    assert result.refund_id == "refunded_total:invoice:7:300"
    assert lemonsqueezy.posts == [("subscription-invoices", "7", 300)]
    assert ProviderUnavailable  # the retryable error the adapters raise when the provider is down
