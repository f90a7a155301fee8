"""Stripe in engine mode, against localstripe with the real stripe SDK: Stripe keeps the card, our
engine runs the schedule, issues the invoices and charges them off-session with PaymentIntents
keyed `invoice-<id>-<attempt>`; its events go through /webhooks/stripe/'s verification and the inbox.

localstripe has no Checkout Sessions, so the card is saved the way a setup-mode session would
leave it (a PaymentMethod attached to a Customer); the session calls themselves are tested at the
HTTP edge below."""

import datetime as dt
import json

import pytest
import stripe
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.invoicing.engine import charges_due_run
from billing.invoicing.engine.stripe import CardDeclined, checkout_method_saved
from billing.invoicing.models import Invoice
from billing.memberships.models import Membership, Payment
from billing.metering.ingest import events_ingest
from billing.providers.models import EngineCharge, EngineSubscription
from billing.providers.services import provider_account_upsert
from billing.tiers.catalog import catalog_import
from tests.billing.test_usage_prices import USAGE
from tests.billing.test_webhooks_in import process_all

pytestmark = pytest.mark.server  # starts localstripe


@pytest.fixture
def engine_shop(alpha, localstripe, monkeypatch):
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        provider_account_upsert(
            provider="stripe",
            credentials={"api_key": "sk_test_engine", "api_base": localstripe, "billing": "engine"},
            webhook_secret="whsec_engine_test",
            make_default=True,
        )
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    response = alpha.api().post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert response.status_code == 201
    client = stripe.StripeClient("sk_test_engine", base_addresses={"api": localstripe})
    return alpha, client


def save_card(client, number="4242424242424242"):
    """What a setup-mode Checkout Session leaves at Stripe: a Customer with the card attached."""
    customer = client.v1.customers.create(params={"email": "c1@example.com"})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def subscribe(fixture, client, capture, number="4242424242424242"):
    created = fixture.api().post(
        "/api/v1/checkouts",
        {"customer": "c1", "price": "pro-monthly", "success_url": "https://app.test/ok",
         "cancel_url": "https://app.test/no"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["url"].endswith(f"/stripe/setup/{body['id']}/")
    customer, method = save_card(client, number)
    with tenant_context(fixture.tenant), capture(execute=True):
        try:
            checkout_method_saved(
                checkout_id=body["id"], stripe_customer=customer, method=method, last4=number[-4:]
            )
        except CardDeclined:
            pass
    process_all(fixture)
    return body["id"], customer


def intents(fixture, client):
    with tenant_context(fixture.tenant):
        keys = EngineCharge.objects.order_by("period").values_list("payment_key", flat=True)
        return [client.v1.payment_intents.retrieve(key) for key in keys]


def test_a_month_on_a_graduated_usage_price_is_invoiced_and_charged_off_session(
    engine_shop, django_capture_on_commit_callbacks
):
    fixture, client = engine_shop
    _, customer = subscribe(fixture, client, django_capture_on_commit_callbacks)
    with tenant_context(fixture.tenant):
        assert all(pi.customer == customer for pi in intents(fixture, client))
        membership = Membership.objects.get(provider="stripe")
        sub = EngineSubscription.objects.get()
        assert (membership.status, membership.provider_subscription_id) == ("active", sub.id)
        assert sub.id.startswith("msub_") and sub.billing_key.startswith("pm_")
        first = Invoice.objects.get()
        assert (first.total, first.status, first.amount_paid) == (2900, "paid", 2900)
        assert EngineCharge.objects.get().order_id == f"invoice-{first.pk}-1"
        stamp = timezone.now().isoformat()
        events_ingest(
            events=[{"id": f"t{i}", "customer": "c1", "type": "llm.call", "timestamp": stamp,
                     "properties": {"tokens": n}} for i, n in enumerate((12_000, 501))]
        )  # fmt: skip
    with tenant_context(fixture.tenant), django_capture_on_commit_callbacks(execute=True):
        assert charges_due_run(now=sub.period_end + dt.timedelta(hours=1)) == 1
    process_all(fixture)
    with tenant_context(fixture.tenant):
        renewal = Invoice.objects.order_by("id").last()
        # 12,501 tokens on the graduated price: 19,125¢ (see test_period_close); next month's fee 2,900¢
        assert (renewal.total, renewal.status, renewal.amount_paid) == (22_025, "paid", 22_025)
        charge = EngineCharge.objects.get(period=2)
        assert charge.order_id == f"invoice-{renewal.pk}-1" and charge.payment_key.startswith("pi_")
        payments = Payment.objects.filter(kind="charge").order_by("id")
        assert [(p.provider, p.amount) for p in payments] == [("stripe", 2900), ("stripe", 22_025)]
    paid = intents(fixture, client)
    assert [(pi.amount, pi.status) for pi in paid] == [(2900, "succeeded"), (22_025, "succeeded")]
    assert paid[1].metadata["monetize_invoice"] == f"minv_{renewal.pk}"


def test_a_declined_card_refuses_the_checkout_and_a_failing_renewal_runs_dunning(
    engine_shop, django_capture_on_commit_callbacks
):
    fixture, client = engine_shop
    subscribe(fixture, client, django_capture_on_commit_callbacks, number="4000000000000341")
    with tenant_context(fixture.tenant):
        assert not Membership.objects.exists()  # the first charge was refused: no membership
        [void] = Invoice.objects.all()
        assert void.status == "void"  # the refused attempt's invoice
        charge = EngineCharge.objects.get()
        assert charge.status == "failed" and charge.failure_code == "card_declined"


def test_engine_events_are_signed_in_stripes_scheme_and_foreign_ones_refused(engine_shop):
    fixture, _ = engine_shop
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    with tenant_context(fixture.tenant):
        adapter = provider_for(provider_account_for_checkout(provider="stripe"))
    payload = {"id": "tevt_1", "type": "payment.succeeded", "created_at": timezone.now().isoformat(),
               "data": {"payment_id": "pi_1", "amount": 1, "currency": "usd", "customer": "c1"}}  # fmt: skip
    body, headers = adapter.sign(payload=payload)
    assert adapter.verify_webhook(body=body, headers=headers)["id"] == "tevt_1"
    assert adapter.parse_event(json.loads(body)).type == "payment.succeeded"
    forged = fixture.client().post(
        "/webhooks/stripe/", body, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["stripe-signature"].replace("v1=", "v1=0"),
    )  # fmt: skip
    assert forged.status_code == 400


# --- the setup-mode Checkout Session, at Stripe's HTTP edge -----------------------------------------


class FakeStripeSetup(stripe.HTTPClient):
    """Stripe's API as the engine-mode checkout uses it: customers, setup-mode checkout sessions
    (retrieved with the saved card expanded) and off-session payment intents."""

    name = "fake-setup"

    def __init__(self, *, declined=False):
        super().__init__()
        self.calls, self.declined = [], declined

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        from urllib.parse import parse_qs, urlsplit

        path = urlsplit(url).path
        form = parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))
        self.calls.append({"method": method, "path": path, "form": form, "headers": dict(headers or {})})
        if path == "/v1/customers":
            return json.dumps({"id": "cus_setup", "object": "customer"}), 200, {}
        if method == "post" and path == "/v1/checkout/sessions":
            return json.dumps({"id": "cs_test_setup", "object": "checkout.session",
                               "url": "https://checkout.stripe.test/c/setup/cs_test_setup"}), 200, {}  # fmt: skip
        if method == "get" and path == "/v1/checkout/sessions/cs_test_setup":
            method_obj = {
                "id": "pm_setup",
                "object": "payment_method",
                "card": {"brand": "visa", "last4": "4242"},
            }
            return json.dumps({
                "id": "cs_test_setup", "object": "checkout.session", "status": "complete", "customer": "cus_setup",
                "setup_intent": {"id": "seti_1", "object": "setup_intent", "status": "succeeded",
                                 "payment_method": method_obj},
            }), 200, {}  # fmt: skip
        if path == "/v1/payment_intents":
            if self.declined:
                error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                         "message": "Your card has insufficient funds.", "payment_intent": {"id": "pi_no"}}  # fmt: skip
                return json.dumps({"error": error}), 402, {}
            amount = int(form["amount"][0])
            return json.dumps({"id": "pi_setup_1", "object": "payment_intent", "status": "succeeded",
                               "amount": amount, "amount_received": amount}), 200, {}  # fmt: skip
        return json.dumps({"error": {"type": "invalid_request_error", "message": f"no {path}"}}), 404, {}


@pytest.fixture
def setup_shop(alpha, monkeypatch):
    from billing.providers.stripe import StripeProvider

    fake = FakeStripeSetup()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        provider_account_upsert(provider="stripe", credentials={"api_key": "sk_test_x", "billing": "engine"},
                                webhook_secret="whsec_x", make_default=True)  # fmt: skip
    alpha.api().post("/api/v1/customers", {"external_id": "c1", "email": "c1@example.com"},
                     content_type="application/json")  # fmt: skip
    return alpha, fake


def test_the_setup_page_opens_a_setup_session_and_the_return_starts_and_charges(
    setup_shop, django_capture_on_commit_callbacks
):
    fixture, fake = setup_shop
    body = fixture.api().post(
        "/api/v1/checkouts",
        {"customer": "c1", "price": "pro-monthly", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"},
        content_type="application/json",
    ).json()  # fmt: skip
    page = fixture.client().get(f"/stripe/setup/{body['id']}/")
    assert (
        page.status_code == 302 and page["Location"] == "https://checkout.stripe.test/c/setup/cs_test_setup"
    )
    session = next(c for c in fake.calls if c["path"] == "/v1/checkout/sessions")
    assert session["form"]["mode"] == ["setup"] and session["form"]["customer"] == ["cus_setup"]
    assert session["form"]["success_url"] == [
        f"http://alpha.test/stripe/setup/{body['id']}/done/?session_id={{CHECKOUT_SESSION_ID}}"
    ]
    assert session["headers"]["Idempotency-Key"] == f"setup-{body['id']}"
    with django_capture_on_commit_callbacks(execute=True):
        back = fixture.client().get(f"/stripe/setup/{body['id']}/done/", {"session_id": "cs_test_setup"})
    assert back.status_code == 302 and back["Location"] == "https://app.test/ok"
    with django_capture_on_commit_callbacks(execute=True):  # a reload charges nothing more
        again = fixture.client().get(f"/stripe/setup/{body['id']}/done/", {"session_id": "cs_test_setup"})
    assert again.status_code == 302
    process_all(fixture)
    [intent] = [c for c in fake.calls if c["path"] == "/v1/payment_intents"]
    with tenant_context(fixture.tenant):
        invoice = Invoice.objects.get()
        assert intent["headers"]["Idempotency-Key"] == f"invoice-{invoice.pk}-1"
        assert intent["form"]["off_session"] == ["true"] and intent["form"]["payment_method"] == ["pm_setup"]
        assert intent["form"]["amount"] == ["2900"] and invoice.status == "paid"
        assert Membership.objects.get().status == "active"
        assert EngineSubscription.objects.get().card_number == "•••• 4242"


def test_a_declined_card_at_the_return_says_why_and_offers_another_card(
    setup_shop, django_capture_on_commit_callbacks
):
    fixture, fake = setup_shop
    fake.declined = True
    body = fixture.api().post(
        "/api/v1/checkouts",
        {"customer": "c1", "price": "pro-monthly", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"},
        content_type="application/json",
    ).json()  # fmt: skip
    fixture.client().get(f"/stripe/setup/{body['id']}/")
    with django_capture_on_commit_callbacks(execute=True):
        page = fixture.client().get(f"/stripe/setup/{body['id']}/done/", {"session_id": "cs_test_setup"})
    html = page.content.decode()
    assert page.status_code == 402 and "insufficient funds" in html and "insufficient_funds" in html
    assert f'href="/stripe/setup/{body["id"]}/"' in html
    bad = fixture.client().get(f"/stripe/setup/{body['id']}/done/", {"session_id": "nope"})
    assert bad.status_code == 400
    assert fixture.client().get("/stripe/setup/unknown/").status_code == 404


def test_the_plan_page_replaces_the_card_of_a_stripe_engine_subscription(
    setup_shop, django_capture_on_commit_callbacks
):
    """ "Update payment method" on a Stripe engine membership opens a setup-mode Checkout Session on
    the customer's Stripe Customer; Stripe's return puts the new card on the engine's subscription."""
    from billing.memberships.models import Customer
    from tests.conftest import PASSWORD

    fixture, fake = setup_shop
    client = fixture.client()
    client.post(
        "/accounts/signup/", {"email": "card@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    with tenant_context(fixture.tenant):
        external = Customer.objects.get(email="card@alpha.test").external_id
    body = fixture.api().post(
        "/api/v1/checkouts",
        {"customer": external, "price": "pro-monthly", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"},
        content_type="application/json",
    ).json()  # fmt: skip
    client.get(f"/stripe/setup/{body['id']}/")
    with django_capture_on_commit_callbacks(execute=True):
        client.get(f"/stripe/setup/{body['id']}/done/", {"session_id": "cs_test_setup"})
    process_all(fixture)
    with tenant_context(fixture.tenant):
        EngineSubscription.objects.update(card_number="•••• 0000")
    assert 'href="/stripe/method/"' in client.get("/account/plan/").content.decode()

    opened = client.get("/stripe/method/")
    assert (
        opened.status_code == 302
        and opened["Location"] == "https://checkout.stripe.test/c/setup/cs_test_setup"
    )
    session = [c for c in fake.calls if c["path"] == "/v1/checkout/sessions" and c["method"] == "post"][-1]
    assert session["form"]["mode"] == ["setup"] and session["form"]["customer"] == ["cus_setup"]
    assert session["form"]["success_url"] == [
        "http://alpha.test/stripe/method/done/?session_id={CHECKOUT_SESSION_ID}"
    ]
    assert session["headers"]["Idempotency-Key"].startswith("setup-method-msub_")
    refused = client.get("/stripe/method/done/", {"session_id": "nope"}, follow=True)
    assert "The card was not saved." in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        back = client.get("/stripe/method/done/", {"session_id": "cs_test_setup"}, follow=True)
    assert "Card updated." in back.content.decode()
    with tenant_context(fixture.tenant):
        assert EngineSubscription.objects.get().card_number == "•••• 4242"

    stranger = fixture.client()
    stranger.post(
        "/accounts/signup/", {"email": "none@alpha.test", "password1": PASSWORD, "password2": PASSWORD}
    )
    nothing = stranger.get("/stripe/method/", follow=True)
    assert "You have no Stripe subscription with a saved card." in nothing.content.decode()
