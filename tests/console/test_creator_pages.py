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
