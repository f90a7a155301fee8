"""Provider-reported payments are linked to the invoice they name (Payment.invoice_ref): a charge
pays it once however often it is redelivered, a failed charge announces invoice.payment_failed,
and a payment that arrived before its invoice is linked when the invoice comes."""

import datetime as dt

import pytest

from billing.events.models import OutboundEvent
from billing.invoicing.models import InvoicePayment, InvoiceStatus
from billing.invoicing.payments import invoice_payment_link
from billing.invoicing.services import (
    LineDraft,
    engine_invoice_ref,
    invoice_draft_create,
    invoice_finalize,
)
from billing.memberships.models import Payment
from billing.memberships.services import customer_upsert, payment_record
from billing.providers.base import PaymentState

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def invoice(in_alpha):
    customer, _ = customer_upsert(external_id="ada", email="ada@example.com")
    draft, _ = invoice_draft_create(
        customer=customer, currency="usd", lines=[LineDraft(kind="fee", description="Pro", amount=4900)]
    )
    return invoice_finalize(invoice_id=draft.pk)


def record(kind, payment_id, amount, ref, provider="sandbox"):
    return payment_record(
        provider=provider,
        event_type=kind,
        payment=PaymentState(
            payment_id=payment_id, amount=amount, currency="usd", customer="ada", invoice=ref
        ),
        occurred_at=NOW,
        event_id=f"evt_{payment_id}",
    )


def test_a_charge_naming_our_invoice_pays_it_once(invoice):
    from billing.events.services import endpoint_create

    endpoint_create(url="https://hooks.example.test/in")
    ref = engine_invoice_ref(invoice)
    record("payment.failed", "pay_1", 4900, ref)
    record("payment.succeeded", "pay_2", 4900, ref)
    record("payment.succeeded", "pay_2", 4900, ref)  # redelivered
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, 4900)
    links = InvoicePayment.objects.filter(invoice=invoice).order_by("id")
    assert [(link.payment.kind, link.amount_applied) for link in links] == [("failed", 0), ("charge", 4900)]
    kinds = list(OutboundEvent.objects.filter(type__startswith="invoice.").values_list("type", flat=True))
    assert kinds.count("invoice.payment_failed") == 1 and kinds.count("invoice.paid") == 1


def test_a_payment_before_its_provider_invoice_is_linked_when_the_invoice_arrives(invoice):
    payment = record("payment.succeeded", "ch_1", 4900, "in_123", provider="stripe")
    assert not InvoicePayment.objects.exists()  # the invoice is not mirrored yet
    invoice_payment_link(payment=payment, invoice=invoice)
    invoice_payment_link(payment=Payment.objects.get(pk=payment.pk), invoice=invoice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, InvoicePayment.objects.count()) == ("paid", 4900, 1)


def test_a_payment_in_another_currency_or_naming_nothing_is_not_applied(invoice):
    payment_record(
        provider="sandbox", event_type="payment.succeeded", occurred_at=NOW, event_id="e1",
        payment=PaymentState(payment_id="p_eur", amount=4900, currency="eur", customer="ada",
                             invoice=engine_invoice_ref(invoice)),
    )  # fmt: skip
    record("payment.succeeded", "p_none", 4900, "")
    record("payment.succeeded", "p_bad", 4900, "minv_999999")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, InvoicePayment.objects.count()) == ("open", 0, 0)
