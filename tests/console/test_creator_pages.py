# ruff: noqa: F811  (pytest fixtures imported from the earnings and payouts tests)
"""Creator pages (issue 12 item 8): the creator requests a payout from their dashboard; staff see
every creator with what is owed to them and every payout by status; a fan sees the creators they
support. Roles guard each page."""

import pytest
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import user_create
from billing.ledger.creators.models import Creator, Payout
from tests.billing.test_creator_earnings import balance, studio  # noqa: F401
from tests.billing.test_creator_payouts import earned, worker  # noqa: F401
from tests.conftest import PASSWORD


def _as(fixture, email, role):
    with tenant_context(fixture.tenant):
        user_create(email=email, password=PASSWORD, role=role)
    client = fixture.client()
    assert client.post("/accounts/login/", {"login": email, "password": PASSWORD}).status_code == 302
    return client


def _text(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def ann_user(earned):  # noqa: F811
    """ann's creator profile belongs to a user with the creator role, who logs in."""
    client = _as(earned, "ann@alpha.test", Role.CREATOR)
    with tenant_context(earned.tenant):
        from accounts.models import User

        Creator.objects.filter(handle="ann").update(user=User.objects.get(email="ann@alpha.test"))
    return client


def test_the_creator_pays_out_from_the_dashboard_and_sees_it_paid(
    earned, ann_user, django_capture_on_commit_callbacks
):
    page = ann_user.get("/creator/")
    assert page.status_code == 200 and "Pay out $90.00" in _text(page)
    with django_capture_on_commit_callbacks(execute=True):
        done = ann_user.post("/creator/payouts/", {"currency": "usd"}, follow=True)
    assert "Payout of $90.00 requested" in _text(done)
    with tenant_context(earned.tenant):
        assert Payout.objects.get().status == "paid"
    assert balance(earned)["available"] == 0
    again = ann_user.get("/creator/")
    assert 'data-status="paid"' in again.content.decode() and "Pay out $" not in _text(again)


@pytest.mark.parametrize(
    ("form", "message"),
    [({"currency": "usd", "amount": "abc"}, "whole number"), ({"currency": "usd", "amount": "999999"}, "available"),
     ({"currency": "zz"}, "three-letter")],
)  # fmt: skip
def test_a_payout_the_dashboard_cannot_make_is_a_message_and_nothing_else(earned, ann_user, form, message):
    response = ann_user.post("/creator/payouts/", form, follow=True)
    assert response.status_code == 200 and message in _text(response)
    with tenant_context(earned.tenant):
        assert not Payout.objects.exists()


def test_staff_see_creators_balances_and_payouts_by_status(
    earned, ann_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ann_user.post("/creator/payouts/", {"currency": "usd", "amount": "4000"})
    support = _as(earned, "support@alpha.test", Role.SUPPORT)
    listed = support.get("/creators/")
    text = _text(listed)
    assert listed.status_code == 200 and "@ann" in text and "$50.00" in text  # 9,000 - 4,000 available
    assert "@ann" not in _text(support.get("/creators/?q=zzz")) and "No creator matches" in _text(
        support.get("/creators/?q=zzz")
    )
    payouts = support.get("/creators/payouts/?status=paid")
    assert payouts.status_code == 200 and "$40.00" in _text(payouts)
    assert "No payouts here" in _text(support.get("/creators/payouts/?status=failed"))
    assert support.get("/creators/payouts/?status=<script>&page=x").status_code == 200
    # a creator or a customer is not staff
    assert ann_user.get("/creators/").status_code == 403
    customer = _as(earned, "fan-user@alpha.test", Role.CUSTOMER)
    assert customer.get("/creators/payouts/").status_code == 403


def test_a_fan_sees_the_creators_they_support(studio, django_capture_on_commit_callbacks):
    from tests.billing.test_creator_earnings import tip_checkout
    from tests.billing.test_sandbox_checkout import pay
    from tests.billing.test_webhooks_in import process_all

    client = _as(studio, "fan1@alpha.test", Role.CUSTOMER)
    assert "No tips yet" in _text(client.get("/account/supporting/"))  # makes the fan's customer record
    with tenant_context(studio.tenant):
        from accounts.models import User

        me = f"user_{User.objects.get(email='fan1@alpha.test').pk}"
    started = tip_checkout(studio, 1500, item_id="video-7", customer=me)
    assert started.status_code == 201, started.content
    pay(studio, started.json()["url"], "4242424242424242", django_capture_on_commit_callbacks)
    process_all(studio)
    page = client.get("/account/supporting/")
    text = _text(page)
    assert page.status_code == 200 and "video-7" in text and "$15.00" in text and "@ann" in text


# --- staff lists: sorted by a column in the database ---------------------------------------------


def _order(response, attribute: str) -> list[str]:
    import re

    assert response.status_code == 200
    return re.findall(rf'<tr {attribute}="([^"]+)">', response.content.decode())


@pytest.fixture
def crowd(alpha):
    """30 creators: handles c00…c29, names in another order, payout states and creation days mixed;
    and 30 payouts of theirs, amounts and request times in other orders, statuses in turn."""
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    states = ["not_started", "pending", "active", "restricted"]
    with tenant_context(alpha.tenant):
        creators = []
        for i in range(30):
            creator = Creator.objects.create(
                handle=f"c{i:02d}", display_name=f"Name {(i * 7) % 30:02d}", email=f"c{i:02d}@crowd.test",
                payout_status=states[i % 4],
            )  # fmt: skip
            Creator.objects.filter(pk=creator.pk).update(created_at=now - dt.timedelta(days=(i * 11) % 30))
            creators.append(Creator.objects.get(pk=creator.pk))
        payouts = []
        for i, creator in enumerate(creators):
            payout = Payout.objects.create(
                creator=creator, amount=100 + (i * 17) % 30, currency="usd", provider="sandbox",
                account_id="acct", status=["requested", "processing", "paid", "failed"][i % 4],
            )  # fmt: skip
            Payout.objects.filter(pk=payout.pk).update(requested_at=now - dt.timedelta(hours=(i * 13) % 30))
            payouts.append(Payout.objects.get(pk=payout.pk))
    return creators, payouts


CREATOR_KEYS = {
    "handle": lambda c: c.handle,
    "name": lambda c: c.display_name,
    "payouts": lambda c: c.payout_status,
    "created": lambda c: c.created_at,
}


@pytest.mark.parametrize("key", CREATOR_KEYS)
def test_staff_sort_creators_by_each_column_both_ways_across_pages(alpha, crowd, key):
    creators, _ = crowd
    support = _as(alpha, "support@alpha.test", Role.SUPPORT)
    ascending = [c.handle for c in sorted(creators, key=lambda c: (CREATOR_KEYS[key](c), c.pk))]
    for sort, expected in ((key, ascending), (f"-{key}", ascending[::-1])):
        first = support.get("/creators/", {"q": "crowd.test", "sort": sort})
        assert _order(first, "data-creator") == expected[:25], sort
        assert f'href="?q=crowd.test&amp;sort={sort}&amp;page=2" rel="next"' in first.content.decode()
        assert f'<option value="{sort}" selected>' in first.content.decode()
        second = support.get("/creators/", {"q": "crowd.test", "sort": sort, "page": 2})
        assert _order(second, "data-creator") == expected[25:], sort
    # a search narrows the sorted list
    narrowed = [h for h in ascending if h.startswith("c1")]
    assert _order(support.get("/creators/", {"q": "c1", "sort": key}), "data-creator") == narrowed


def test_staff_creators_bogus_sort_falls_back_and_queries_do_not_grow(alpha, crowd):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    support = _as(alpha, "support@alpha.test", Role.SUPPORT)
    by_handle = [f"c{i:02d}" for i in range(25)]
    for bogus in ("balance", "-", "--name", "email", "handle;drop", "-pending"):
        assert _order(support.get("/creators/", {"sort": bogus}), "data-creator") == by_handle, bogus
    with CaptureQueriesContext(connection) as few:
        support.get("/creators/", {"q": "c0", "sort": "-created"})  # 10 creators
    with CaptureQueriesContext(connection) as many:
        support.get("/creators/", {"sort": "-created"})  # a page of 25
    assert len(many.captured_queries) == len(few.captured_queries)


PAYOUT_KEYS = {
    "requested": lambda p: p.requested_at,
    "amount": lambda p: p.amount,
    "status": lambda p: p.status,
}


@pytest.mark.parametrize("key", PAYOUT_KEYS)
def test_staff_sort_payouts_by_each_column_both_ways_with_a_status(alpha, crowd, key):
    _, payouts = crowd
    support = _as(alpha, "support@alpha.test", Role.SUPPORT)
    ascending = [str(p.pk) for p in sorted(payouts, key=lambda p: (PAYOUT_KEYS[key](p), p.pk))]
    for sort, expected in ((key, ascending), (f"-{key}", ascending[::-1])):
        first = support.get("/creators/payouts/", {"sort": sort})
        assert _order(first, "data-payout") == expected[:25], sort
        html = first.content.decode()
        assert f'href="?sort={sort}&amp;page=2" rel="next"' in html
        assert f'href="?sort={sort}&amp;status=paid"' in html  # the status tabs keep the sort
        assert (
            _order(support.get("/creators/payouts/", {"sort": sort, "page": 2}), "data-payout")
            == expected[25:]
        )
        paid = [pk for pk in expected if any(str(p.pk) == pk and p.status == "paid" for p in payouts)]
        assert (
            _order(support.get("/creators/payouts/", {"status": "paid", "sort": sort}), "data-payout") == paid
        )
    one = payouts[3].creator.handle
    mine = support.get("/creators/payouts/", {"creator": one, "sort": key})
    assert _order(mine, "data-payout") == [str(payouts[3].pk)]


def test_staff_payouts_bogus_sort_falls_back_newest_first_and_queries_do_not_grow(alpha, crowd):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, payouts = crowd
    support = _as(alpha, "support@alpha.test", Role.SUPPORT)
    newest = [str(p.pk) for p in sorted(payouts, key=lambda p: (p.requested_at, p.pk), reverse=True)]
    assert _order(support.get("/creators/payouts/"), "data-payout") == newest[:25]
    for bogus in ("creator", "-", "--amount", "account_id", "amount;drop", "-id"):
        assert _order(support.get("/creators/payouts/", {"sort": bogus}), "data-payout") == newest[:25], bogus
    with CaptureQueriesContext(connection) as few:
        support.get("/creators/payouts/", {"status": "paid", "sort": "amount"})  # 7 payouts
    with CaptureQueriesContext(connection) as many:
        support.get("/creators/payouts/", {"sort": "amount"})  # a page of 25
    assert len(many.captured_queries) == len(few.captured_queries)
