"""What applying one provider event costs the worker, in statements (issue 10 item 22; the rate
itself is measured by bench/webhooks.py beside a no-op task in the same worker)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent, InboxStatus
from billing.inbox.services import inbox_process
from billing.providers.sandbox import SandboxProvider
from billing.providers.services import provider_account_upsert
from tests.billing.test_webhooks_in import deliver, sub_event

# select the row, price, customer, the memberships (this subscription's and the customer's live ones,
# in one statement), update it, its history row, the endpoints, the inbox row's bookkeeping (a
# burst applied by the worker's drain costs four an event: tests/billing/test_inbox_drain.py)
STATEMENTS_PER_EVENT = 8


@pytest.fixture
def sandbox(ci_catalog):
    with tenant_context(ci_catalog.tenant):
        account = provider_account_upsert(provider="sandbox")
        return ci_catalog, SandboxProvider(webhook_secret=account.webhook_secret)


def test_a_subscription_event_is_applied_in_few_statements(sandbox):
    fixture, adapter = sandbox
    for i in range(3):  # the first creates the customer and membership; later ones are the steady state
        deliver(fixture, adapter, sub_event(f"evt_{i}", minutes=i))
    with tenant_context(fixture.tenant):
        first, second, third = InboxEvent.objects.order_by("id").values_list("id", flat=True)
        inbox_process(inbox_id=first)
        inbox_process(inbox_id=second)
        with CaptureQueriesContext(connection) as queries:
            assert inbox_process(inbox_id=third) == InboxStatus.APPLIED
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(statements) <= STATEMENTS_PER_EVENT, "\n".join(s[:120] for s in statements)
    (bookkeeping,) = [s for s in statements if s.startswith('UPDATE "webhooks_inboxevent"')]
    assert '"payload"' not in bookkeeping  # the stored payload is never written again
