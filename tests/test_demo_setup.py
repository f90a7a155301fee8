"""`make run` provisions the demo tenant with `demo_setup`: it must work on a fresh database and
again on the next start (nothing duplicated)."""

from io import StringIO

from django.core.management import call_command
from django.db import connection
from django_tenants.utils import tenant_context

from billing.metering.models import Meter
from tenants.selectors import tenant_get_by_slug


def test_demo_setup_provisions_a_working_demo_twice(db, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the sandbox's webhooks reach the inbox
        call_command("demo_setup", "--port", "8123", stdout=out)
    assert "API key" in out.getvalue() and "8123" in out.getvalue()
    call_command("demo_setup", stdout=StringIO())  # the next `make run`
    tenant = tenant_get_by_slug(slug="demo")
    with tenant_context(tenant), connection.cursor() as cursor:
        assert Meter.objects.filter(code="build-minutes").exists()
        cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM metering_event")
        count, distinct = cursor.fetchone()
        assert count == distinct > 100  # usage for the charts, stored once
    with tenant_context(
        tenant
    ):  # invoices for the pages, made once: two sandbox subscriptions and an open one
        from billing.inbox.models import InboxEvent
        from billing.inbox.services import inbox_process
        from billing.invoicing.models import CreditNote, Invoice

        for inbox_id in InboxEvent.objects.order_by("id").values_list(
            "id", flat=True
        ):  # what the worker does
            inbox_process(inbox_id=inbox_id)
        invoices = Invoice.objects.order_by("id")
        assert [(i.status, i.total) for i in invoices][:2] == [("paid", 19_000), ("paid", 147_000)]
        assert invoices[2].status == "open" and invoices[2].total >= 99_900  # Enterprise: $999 and up
        assert CreditNote.objects.get().amount == 10_000
