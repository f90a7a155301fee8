"""`make run` provisions the demo tenant with `demo_setup`: it must work on a fresh database and
again on the next start (nothing duplicated)."""

from io import StringIO

from django.core.management import call_command
from django.db import connection
from django_tenants.utils import tenant_context

from billing.metering.models import Meter
from tenants.selectors import tenant_get_by_slug


def test_demo_setup_provisions_a_working_demo_twice(db):
    out = StringIO()
    call_command("demo_setup", "--port", "8123", stdout=out)
    assert "API key" in out.getvalue() and "8123" in out.getvalue()
    call_command("demo_setup", stdout=StringIO())  # the next `make run`
    tenant = tenant_get_by_slug(slug="demo")
    with tenant_context(tenant), connection.cursor() as cursor:
        assert Meter.objects.filter(code="build-minutes").exists()
        cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM metering_event")
        count, distinct = cursor.fetchone()
        assert count == distinct > 100  # usage for the charts, stored once
