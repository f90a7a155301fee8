"""Invoices (billing/invoicing): drafts, gapless numbers, immutability in the database, payments,
void/uncollectible, the period key, and the API."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import tenant_context

from billing.events.models import OutboundEvent
from billing.invoicing.exceptions import InvoiceStateError
from billing.invoicing.models import Invoice, InvoiceLine, InvoiceStatus
from billing.invoicing.services import (
    LineDraft,
    invoice_draft_create,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_payment_apply,
    invoice_void,
)
from billing.memberships.services import customer_upsert


def lines(*amounts):
    return [LineDraft(kind="fee", description=f"Line {i}", amount=a) for i, a in enumerate(amounts)]


@pytest.fixture
def customer(in_alpha):
    customer, _ = customer_upsert(external_id="ada", email="ada@example.com", name="Ada")
    return customer


def draft(customer, *amounts, **extra):
    invoice, _ = invoice_draft_create(customer=customer, currency="usd", lines=lines(*amounts), **extra)
    return invoice


def test_a_draft_sums_its_lines_and_snapshots_the_customer(customer):
    invoice = draft(customer, 1900, 250, -150)
    assert (invoice.status, invoice.number, invoice.subtotal, invoice.total) == ("draft", "", 2000, 2000)
    assert invoice.customer_details == {
        "external_id": "ada",
        "name": "Ada",
        "email": "ada@example.com",
        "tax_exempt": False,
    }
    customer.name = "Ada Lovelace"
    customer.save()
    invoice.refresh_from_db()
    assert invoice.customer_details["name"] == "Ada"  # as billed


def test_finalizing_numbers_invoices_in_sequence_and_is_idempotent(customer):
    first, second = draft(customer, 100), draft(customer, 200)
    invoice_finalize(invoice_id=second.pk)
    invoice_finalize(invoice_id=first.pk)
    assert Invoice.objects.get(pk=second.pk).number == "ALPHA-000001"
    assert Invoice.objects.get(pk=first.pk).number == "ALPHA-000002"
    again = invoice_finalize(invoice_id=first.pk)
    assert again.number == "ALPHA-000002" and again.status == InvoiceStatus.OPEN


def test_a_rolled_back_finalization_gives_its_number_back(customer):
    invoice = draft(customer, 100)
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice_id=invoice.pk)
        raise RuntimeError("crash after numbering")
    assert Invoice.objects.get(pk=invoice.pk).number == ""
    assert invoice_finalize(invoice_id=draft(customer, 5).pk).number == "ALPHA-000001"


def test_nothing_due_is_paid_at_once(customer):
    invoice = invoice_finalize(invoice_id=draft(customer, 0).pk)
    assert invoice.status == InvoiceStatus.PAID and invoice.paid_at is not None and invoice.amount_due == 0


def test_a_finalized_invoice_is_frozen_in_the_database(customer):
    invoice = invoice_finalize(invoice_id=draft(customer, 1000).pk)
    for change in ({"total": 1}, {"number": "X-1"}, {"currency": "eur"}, {"subtotal": 5}):
        with pytest.raises(DatabaseError), transaction.atomic():
            Invoice.objects.filter(pk=invoice.pk).update(**change)
    with pytest.raises(DatabaseError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()
    line = invoice.lines.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(amount=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).delete()
    # what may still move: the status and what was paid
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=10)
    # a draft is still free to change
    other = draft(customer, 1)
    InvoiceLine.objects.filter(invoice=other).update(amount=2)
    other.delete()


def test_payments_settle_an_invoice_once_nothing_is_due(customer):
    invoice = invoice_finalize(invoice_id=draft(customer, 1000).pk)
    invoice = invoice_payment_apply(invoice_id=invoice.pk, amount=400)
    assert (invoice.status, invoice.amount_due) == ("open", 600)
    invoice = invoice_payment_apply(invoice_id=invoice.pk, amount=600)
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_due == 0
    with pytest.raises(InvoiceStateError):
        invoice_payment_apply(invoice_id=invoice.pk, amount=1)
    with pytest.raises(InvoiceStateError):
        invoice_void(invoice_id=invoice.pk)  # paid: a credit note corrects it
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvoiceStateError):
            invoice_payment_apply(invoice_id=invoice.pk, amount=bad)


def test_void_and_uncollectible(customer):
    invoice = invoice_finalize(invoice_id=draft(customer, 1000).pk)
    assert invoice_mark_uncollectible(invoice_id=invoice.pk).status == "uncollectible"
    assert invoice_void(invoice_id=invoice.pk).status == "void"
    assert invoice_void(invoice_id=invoice.pk).status == "void"  # twice: still void
    with pytest.raises(InvoiceStateError):
        invoice_payment_apply(invoice_id=invoice.pk, amount=10)
    with pytest.raises(InvoiceStateError):
        invoice_void(invoice_id=draft(customer, 5).pk)  # a draft is deleted, not voided
    late = invoice_finalize(invoice_id=draft(customer, 300).pk)
    invoice_mark_uncollectible(invoice_id=late.pk)
    assert invoice_payment_apply(invoice_id=late.pk, amount=300).status == "paid"  # paid after all


def test_events_are_published(customer):
    from billing.events.services import endpoint_create

    endpoint_create(url="https://hooks.example.test/in")
    invoice = invoice_finalize(invoice_id=draft(customer, 700).pk)
    invoice_payment_apply(invoice_id=invoice.pk, amount=700)
    types = list(OutboundEvent.objects.order_by("created_at", "id").values_list("type", flat=True))
    assert types == ["invoice.created", "invoice.finalized", "invoice.paid"]
    payload = OutboundEvent.objects.get(type="invoice.paid").payload
    assert payload["number"] == "ALPHA-000001" and payload["total"] == 700 and payload["customer"] == "ada"


def test_a_period_key_makes_the_second_close_find_the_first_invoice(customer):
    first, created = invoice_draft_create(
        customer=customer, currency="usd", lines=lines(5), period_key="m-1-2026-11"
    )
    again, created_again = invoice_draft_create(
        customer=customer, currency="usd", lines=lines(999), period_key="m-1-2026-11"
    )
    assert created and not created_again and again.pk == first.pk and again.total == 5


def test_concurrent_finalizations_take_consecutive_numbers_and_racing_closes_make_one_invoice(live_tenant):
    from billing.memberships.models import Customer
    from tests.helpers import committed, run_parallel

    def drafts():
        with tenant_context(live_tenant.tenant):
            c1 = Customer.objects.get(external_id="c1")
            return [draft(c1, 100 + i).pk for i in range(6)]

    ids = committed(drafts)

    def finalize(i):
        with tenant_context(live_tenant.tenant):
            return invoice_finalize(invoice_id=ids[i]).number

    numbers = sorted(run_parallel(finalize, 6))
    assert numbers == [f"{live_tenant.tenant.slug.upper().replace('-', '')}-{n:06d}" for n in range(1, 7)]

    def close(i):
        with tenant_context(live_tenant.tenant):
            c1 = Customer.objects.get(external_id="c1")
            invoice, created = invoice_draft_create(
                customer=c1, currency="usd", lines=lines(10 * (i + 1)), period_key="race"
            )
            return invoice.pk, created

    results = run_parallel(close, 4)
    assert len({pk for pk, _ in results}) == 1 and sum(created for _, created in results) == 1


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def billed(alpha):
    with tenant_context(alpha.tenant):
        customer, _ = customer_upsert(external_id="ada")
        invoices = [invoice_finalize(invoice_id=draft(customer, 1000 * (i + 1)).pk) for i in range(3)]
        line = LineDraft(
            kind="usage", description="Tokens", amount=19_125, quantity=Decimal("12501"),
            unit_amount=Decimal("0.25"), meter="tokens", breakdown=[{"first": "1", "quantity": "1000"}],
        )  # fmt: skip
        usage, _ = invoice_draft_create(customer=customer, currency="usd", lines=[line])
    return alpha, invoices, usage


def test_api_lists_a_customers_invoices_newest_first_paginated(billed):
    alpha, invoices, usage = billed
    page = alpha.api().get("/api/v1/customers/ada/invoices", {"limit": 2}).json()
    assert [i["id"] for i in page["results"]] == [usage.pk, invoices[2].pk] and page["next"]
    rest = alpha.api().get(page["next"]).json()
    assert [i["id"] for i in rest["results"]] == [invoices[1].pk, invoices[0].pk]


def test_api_shows_an_invoice_with_its_lines(billed):
    alpha, invoices, usage = billed
    body = alpha.api().get(f"/api/v1/invoices/{usage.pk}").json()
    assert body["status"] == "draft" and body["total"] == 19_125 and body["customer"] == "ada"
    (line,) = body["lines"]
    assert (line["quantity"], line["unit_amount"], line["amount"], line["meter"]) == (
        "12501",
        "0.25",
        19_125,
        "tokens",
    )
    body = alpha.api().get(f"/api/v1/invoices/{invoices[0].pk}").json()
    assert body["number"] == "ALPHA-000001" and body["amount_due"] == 1000


def test_api_void_and_uncollectible(billed):
    alpha, invoices, _ = billed
    response = alpha.api().post(f"/api/v1/invoices/{invoices[0].pk}/mark-uncollectible")
    assert response.status_code == 200 and response.json()["status"] == "uncollectible"
    response = alpha.api().post(f"/api/v1/invoices/{invoices[0].pk}/void")
    assert response.json()["status"] == "void" and response.json()["amount_due"] == 0
    with tenant_context(alpha.tenant):
        invoice_payment_apply(invoice_id=invoices[1].pk, amount=2000)
    response = alpha.api().post(f"/api/v1/invoices/{invoices[1].pk}/void")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invoice_state"
    with tenant_context(alpha.tenant):  # a provider collects a mirrored invoice: changed there, not here
        mirrored = Invoice.objects.create(
            customer=invoices[0].customer, currency="usd", status="open", number="in_1", total=500, subtotal=500,
            collected_by="provider", provider="stripe", provider_invoice_id="in_1",
        )  # fmt: skip
    for action in ("void", "mark-uncollectible"):
        response = alpha.api().post(f"/api/v1/invoices/{mirrored.pk}/{action}")
        assert response.status_code == 409 and response.json()["error"]["code"] == "collected_by_provider"


def test_api_invoices_of_another_tenant_or_unknown_are_404(billed, beta):
    alpha, invoices, _ = billed
    assert beta.api().get(f"/api/v1/invoices/{invoices[0].pk}").status_code == 404
    assert beta.api().post(f"/api/v1/invoices/{invoices[0].pk}/void").status_code == 404
    assert beta.api().get("/api/v1/customers/ada/invoices").status_code == 404
    assert alpha.api().get("/api/v1/invoices/999999999").status_code == 404
    assert alpha.api().get("/api/v1/invoices/99999999999999999999").status_code == 404


# --- PDF ------------------------------------------------------------------------------------------


def _pdf_text(content: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_invoice_pdf_shows_seller_customer_lines_breakdown_and_totals(billed):
    from tenants.models import Tenant

    alpha, invoices, usage = billed
    Tenant.objects.filter(pk=alpha.tenant.pk).update(invoice_address="1 Harbour Street\nBusan 48058\nKorea")
    from tenants.middleware import tenant_cache_clear

    tenant_cache_clear()
    with tenant_context(alpha.tenant):
        invoice_payment_apply(invoice_id=invoices[1].pk, amount=500)
    response = alpha.api().get(f"/api/v1/invoices/{invoices[1].pk}/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="ALPHA-000002.pdf"'
    assert response.content.startswith(b"%PDF-")
    text = _pdf_text(response.content)
    for expected in (
        "Alpha",
        "Busan 48058",
        "Invoice ALPHA-000002",
        "DUE",
        "$20.00",
        "$5.00",
        "$15.00",
        "Amount due",
    ):
        assert expected in text, (expected, text)

    draft_pdf = alpha.api().get(f"/api/v1/invoices/{usage.pk}/pdf", HTTP_ACCEPT="application/pdf")
    text = _pdf_text(draft_pdf.content)
    assert "DRAFT" in text and "Invoice (draft)" in text and "Tokens" in text and "$191.25" in text
    assert "$0.0025" in text  # a fractional unit price in major units


def test_invoice_pdf_in_krw_and_errors_are_json(billed, beta):
    alpha, invoices, _ = billed
    with tenant_context(alpha.tenant):
        customer, _ = customer_upsert(external_id="minsu", name="Zoë Ångström")
        invoice, _ = invoice_draft_create(customer=customer, currency="krw", lines=lines(39_000))
        invoice_finalize(invoice_id=invoice.pk)
    text = _pdf_text(alpha.api().get(f"/api/v1/invoices/{invoice.pk}/pdf").content)
    assert "₩39,000" in text and "Zoë Ångström" in text
    response = beta.api().get(f"/api/v1/invoices/{invoice.pk}/pdf", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_invoice"


def test_owner_sets_the_invoice_address_on_the_settings_page(alpha):
    from tests.conftest import PASSWORD

    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    page = client.get("/settings/")
    assert "Billing address on invoices" in page.content.decode()
    response = client.post(
        "/settings/",
        {
            "rate_limit_failure_mode": "open",
            "unknown_usage_customer": "reject",
            "invoice_address": "  9 Quay Road\nLeith  ",
        },
        follow=True,
    )
    assert response.status_code == 200 and "Settings saved." in response.content.decode()
    from tenants.models import Tenant

    assert Tenant.objects.get(pk=alpha.tenant.pk).invoice_address == "9 Quay Road\nLeith"


def _png(width=400, height=120, color=(20, 90, 200)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def _settings_post(client, **extra):
    body = {
        "rate_limit_failure_mode": "open",
        "unknown_usage_customer": "reject",
        "invoice_address": "",
        **extra,
    }
    return client.post("/settings/", body, follow=True)


def test_owner_uploads_a_logo_that_is_printed_on_invoices_and_hostile_files_are_refused(billed):
    alpha, invoices, _ = billed
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tenants.models import TenantLogo
    from tests.conftest import PASSWORD

    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    without = alpha.api().get(f"/api/v1/invoices/{invoices[0].pk}/pdf").content
    assert b"/Subtype /Image" not in without

    bad = _settings_post(client, logo=SimpleUploadedFile("logo.png", b"<?php echo 1; ?>", "image/png"))
    assert "not an image we can read" in bad.content.decode() and not TenantLogo.objects.exists()
    huge = _settings_post(client, logo=SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 10)))
    assert "too large" in huge.content.decode() and not TenantLogo.objects.exists()

    ok = _settings_post(client, logo=SimpleUploadedFile("logo.jpg", _png(1600, 400), "image/png"))
    page = ok.content.decode()
    assert "The new logo is on your invoices." in page and 'alt="Your invoice logo"' in page
    logo = TenantLogo.objects.get()
    assert (logo.width, logo.height) == (800, 200) and bytes(logo.png).startswith(b"\x89PNG")  # scaled, PNG
    pdf = alpha.api().get(f"/api/v1/invoices/{invoices[0].pk}/pdf")
    assert pdf.status_code == 200 and b"/Subtype /Image" in pdf.content

    _settings_post(client, logo_remove="on")
    assert not TenantLogo.objects.exists()
