"""A creator's public channel page (issue 12 items 3 and 8): `/channels/<handle>/` without a login
lists the published tiers with their prices; "Join" goes through the fan's checkout at the
sandbox and back to the fan's supporting page; the tip form starts a tip's checkout; an unknown
handle is the site's 404 page."""

import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.roles import Role
from billing.ledger.creators.models import Creator, Tip
from billing.memberships.models import Checkout, Membership
from tests.billing.test_creator_pages import login
from tests.billing.test_creator_tier_pages import GOLD, publish
from tests.billing.test_sandbox_checkout import pay
from tests.billing.test_webhooks_in import process_all


@pytest.fixture
def channel(alpha, monkeypatch):
    """Creator `ann` (display name Ann B) with Gold (monthly and yearly), Silver, and Bronze deleted."""
    from billing.providers.services import provider_account_upsert

    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    ann = login(alpha, "ann@alpha.test", Role.CREATOR)
    assert publish(ann, code="gold").status_code == 302
    assert (
        publish(ann, code="silver", name="Silver", description="", monthly="15", yearly="").status_code == 302
    )
    assert publish(ann, code="bronze", name="Bronze", yearly="").status_code == 302
    assert ann.post("/creator/tiers/bronze/delete/").status_code == 302
    with tenant_context(alpha.tenant):
        Creator.objects.filter(handle="ann").update(display_name="Ann B")
    return alpha


def test_anyone_reads_the_channel_page_with_its_published_tiers(channel):
    page = Client(HTTP_HOST=channel.host).get("/channels/ann/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Ann B <small" in html and "@ann" in html
    assert re.findall(r'data-tier="([^"]+)"', html) == ["ann-gold", "ann-silver"]  # not Bronze (deleted)
    assert "<strong>$5.00</strong> / month" in html and "<strong>$50.00</strong> / year" in html
    assert "<strong>$15.00</strong> / month" in html
    assert "<li>Early videos</li><li>A monthly Q&amp;A</li>" in html  # the benefits, one per line
    # a visitor's Join goes through the login and back to the checkout of that price
    assert 'href="/channels/ann/join/?price=ann-gold-year"' in html and "Join Gold fans yearly" in html
    assert "Log in</a> to send one" in html and 'action="/channels/ann/tip/"' not in html
    joined = Client(HTTP_HOST=channel.host).get("/channels/ann/join/?price=ann-gold-month")
    assert joined.status_code == 302
    assert joined["Location"] == "/accounts/login/?next=/channels/ann/join/%3Fprice%3Dann-gold-month"


def test_an_unknown_channel_is_the_sites_404_page(channel):
    page = Client(HTTP_HOST=channel.host).get("/channels/nobody/")
    assert page.status_code == 404 and "We could not find that page" in page.content.decode()
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    assert fan.post("/channels/nobody/join/", {"price": "ann-gold-month"}).status_code == 404
    assert fan.post("/channels/nobody/tip/", {"amount": "5"}).status_code == 404


def test_a_channel_without_tiers_says_so(alpha):
    bob = login(alpha, "bob@alpha.test", Role.CREATOR)
    assert bob.get("/creator/").status_code == 200  # bob's profile
    visitor = Client(HTTP_HOST=alpha.host).get("/channels/bob/").content.decode()
    assert "No tiers to join yet" in visitor
    own = bob.get("/channels/bob/").content.decode()
    assert "Your channel has no tiers yet" in own and 'href="/creator/tiers/new/"' in own


def test_a_fan_joins_a_tier_from_the_channel_page(channel, django_capture_on_commit_callbacks):
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    html = fan.get("/channels/ann/").content.decode()
    assert '<input type="hidden" name="price" value="ann-gold-month">' in html

    # when the fan joins Gold monthly and pays on the sandbox's page
    started = fan.post("/channels/ann/join/", {"price": "ann-gold-month"})
    assert started.status_code == 302 and "/sandbox/checkout/" in started["Location"]
    with tenant_context(channel.tenant):
        checkout = Checkout.objects.get()
        assert checkout.price.code == "ann-gold-month" and checkout.customer.user.email == "fan@alpha.test"
        assert checkout.success_url == "http://alpha.test/account/supporting/?checkout=done"
        assert checkout.cancel_url == "http://alpha.test/channels/ann/"
    paid = pay(channel, started["Location"], "4242424242424242", django_capture_on_commit_callbacks)
    assert paid.status_code == 302 and paid["Location"] == checkout.success_url
    back = fan.get("/account/supporting/?checkout=done").content.decode()
    assert "Thank you! Your membership shows here" in back
    process_all(channel)

    # then the fan is a member: their supporting page links the channel, which marks their tier
    with tenant_context(channel.tenant):
        assert Membership.objects.get(customer__user__email="fan@alpha.test").tier.code == "ann-gold"
    supporting = fan.get("/account/supporting/").content.decode()
    assert '<a href="/channels/ann/">Ann B</a>' in supporting and "Thank you" not in supporting
    html = fan.get("/channels/ann/").content.decode()
    gold = html[html.index('data-tier="ann-gold"') : html.index('data-tier="ann-silver"')]
    assert "Your tier" in gold and "Join" not in gold
    # another of ann's tiers replaces Gold (one live membership per customer and creator): it says so
    assert "Switch to Silver</button>" in html and "Join Silver" not in html
    assert 'data-confirm="Switch to Silver ($15.00 / month)? Your current tier with Ann B ends' in html


@pytest.mark.parametrize("price", ["", "ann-bronze-month", "nope", "ann-gold"])
def test_joining_a_price_the_channel_does_not_offer_starts_nothing(channel, price):
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    response = fan.post("/channels/ann/join/", {"price": price})
    assert response.status_code == 302 and response["Location"] == "/channels/ann/"
    assert "has no tier" in fan.get("/channels/ann/").content.decode()
    with tenant_context(channel.tenant):
        assert not Checkout.objects.exists()


def test_another_creators_price_is_not_joined_through_this_channel(channel):
    bob = login(channel, "bob@alpha.test", Role.CREATOR)
    assert bob.post("/creator/tiers/new/", {**GOLD, "code": "vip"}).status_code == 302
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    response = fan.post("/channels/ann/join/", {"price": "bob-vip-month"})
    assert response.status_code == 302 and response["Location"] == "/channels/ann/"
    with tenant_context(channel.tenant):
        assert not Checkout.objects.exists()


def test_a_fan_tips_from_the_channel_page(channel):
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    html = fan.get("/channels/ann/?item=video-42").content.decode()
    assert "Send a tip <small" in html and "for video-42" in html
    assert 'name="item" value="video-42"' in html and "Between $1.00 and $500.00." in html
    started = fan.post("/channels/ann/tip/", {"amount": "10", "item": "video-42"})
    assert started.status_code == 302 and "/sandbox/checkout/" in started["Location"]
    with tenant_context(channel.tenant):
        tip = Tip.objects.get()
        assert (tip.creator.handle, tip.amount, tip.currency, tip.item_id) == ("ann", 1000, "usd", "video-42")
        assert tip.success_url == "http://alpha.test/account/supporting/?tipped=ann"
        assert tip.cancel_url == "http://alpha.test/channels/ann/"


@pytest.mark.parametrize(
    "amount, message",
    [
        ("", "This field is required."),
        ("ten", "Enter an amount such as 12.50."),
        ("0.5", "A tip is between $1.00 and $500.00."),
        ("501", "A tip is between $1.00 and $500.00."),
        ("1.001", "USD has 2 decimals."),
        ("0", "Enter an amount above zero."),
    ],
)
def test_a_bad_tip_is_shown_beside_the_amount_and_starts_nothing(channel, amount, message):
    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    response = fan.post("/channels/ann/tip/", {"amount": amount})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="error-amount"' in html and message in html
    assert re.findall(r'data-tier="([^"]+)"', html) == ["ann-gold", "ann-silver"]  # the page, whole
    with tenant_context(channel.tenant):
        assert not Tip.objects.exists()


def test_a_visitor_cannot_tip_or_join_without_logging_in(channel):
    visitor = Client(HTTP_HOST=channel.host)
    tip = visitor.post("/channels/ann/tip/", {"amount": "5"})
    assert tip.status_code == 302 and tip["Location"].startswith("/accounts/login/")
    join = visitor.post("/channels/ann/join/", {"price": "ann-gold-month"})
    assert join.status_code == 302 and join["Location"].startswith("/accounts/login/")
    with tenant_context(channel.tenant):
        assert not Tip.objects.exists() and not Checkout.objects.exists()


def test_the_channel_page_and_the_dashboard_query_as_often_whatever_the_number_of_tiers(channel):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.ledger.creators.services import creator_tier_create

    fan = login(channel, "fan@alpha.test", Role.CUSTOMER)
    with tenant_context(channel.tenant):
        ann = Client(HTTP_HOST=channel.host)
        ann.force_login(Creator.objects.get(handle="ann").user)

    def queries(client, url) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    before = (queries(fan, "/channels/ann/"), queries(ann, "/creator/"))
    with tenant_context(channel.tenant):
        creator = Creator.objects.get(handle="ann")
        for n in range(6):
            creator_tier_create(creator=creator, code=f"t{n}", name=f"T{n}", amount=100 + n, currency="usd",
                                yearly_amount=1000 + n)  # fmt: skip
    assert (queries(fan, "/channels/ann/"), queries(ann, "/creator/")) == before
