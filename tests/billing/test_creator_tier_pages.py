"""A creator's channel tiers from their dashboard (issue 12 items 3 and 8): publish one (code made
from the name or given, benefits, a monthly price in major units, optionally a yearly one), edit
its name, benefits and prices (a new amount is a new price: members keep theirs), delete it
behind a confirmation. Bad input is shown beside its field and changes nothing; another creator's
tier is a 404; only creators."""

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from billing.ledger.creators.models import Creator
from billing.memberships.models import Membership
from billing.memberships.services import customer_upsert
from billing.tiers.models import Price, Tier
from tests.billing.test_creator_pages import login

GOLD = {"name": "Gold fans", "code": "", "description": "Early videos\nA monthly Q&A", "currency": "usd",
        "monthly": "5", "yearly": "50.00"}  # fmt: skip


@pytest.fixture
def ann(alpha):
    """alpha with the sandbox and creator `ann` logged in (her profile made on first visit)."""
    from billing.providers.services import provider_account_upsert

    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
    client = login(alpha, "ann@alpha.test", Role.CREATOR)
    assert client.get("/creator/").status_code == 200
    with tenant_context(alpha.tenant):
        assert Creator.objects.get(user__email="ann@alpha.test").handle == "ann"
    return client


def publish(client, **changes):
    return client.post("/creator/tiers/new/", {**GOLD, **changes})


def tiers(fixture, **filters):
    with tenant_context(fixture.tenant):
        return {
            tier.code: (tier.name, tier.is_public, sorted((p.code, p.interval, p.unit_amount, p.active)
                                                          for p in tier.prices.all()))
            for tier in Tier.objects.filter(creator__isnull=False, **filters).prefetch_related("prices")
        }  # fmt: skip


def test_a_creator_publishes_a_tier_through_the_dashboard_form(alpha, ann):
    # given an empty dashboard that says what to do
    html = ann.get("/creator/").content.decode()
    assert "No tiers yet" in html and 'href="/creator/tiers/new/"' in html
    assert 'href="/channels/ann/"' in html and "Your channel page" in html
    form = ann.get("/creator/tiers/new/")
    assert form.status_code == 200 and 'name="monthly"' in form.content.decode()

    # when the creator publishes Gold with a blank code, a monthly and a yearly price in dollars
    done = publish(ann)

    # then the code comes from the name, the prices are in cents, and the dashboard says so
    assert done.status_code == 302 and done["Location"] == "/creator/#tiers"
    assert tiers(alpha) == {
        "ann-gold-fans": ("Gold fans", True, [("ann-gold-fans-month", "month", 500, True),
                                              ("ann-gold-fans-year", "year", 5000, True)]),
    }  # fmt: skip
    page = ann.get("/creator/").content.decode()
    assert "Gold fans is published" in page  # the flash message
    assert "$5.00 / month" in page and "$50.00 / year" in page and "No tiers yet" not in page
    assert 'data-confirm="Delete Gold fans?' in page
    listed = alpha.client().get("/api/v1/channels/ann/tiers").json()["results"]
    assert [t["code"] for t in listed] == ["ann-gold-fans"]

    # a given code, monthly only, in a zero-decimal currency
    assert (
        publish(ann, name="Silver", code="silver", monthly="3,000", yearly="", currency="KRW").status_code
        == 302
    )
    assert tiers(alpha)["ann-silver"] == ("Silver", True, [("ann-silver-month", "month", 3000, True)])


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"monthly": "abc"}, "monthly", "Enter an amount such as 12.50."),
        ({"monthly": "5.001"}, "monthly", "USD has 2 decimals."),
        ({"monthly": "0"}, "monthly", "Enter an amount above zero."),
        ({"monthly": "-5"}, "monthly", "Enter an amount such as 12.50."),
        ({"monthly": ""}, "monthly", "This field is required."),
        ({"monthly": "99999999999999999999"}, "monthly", "That amount is too large."),
        ({"yearly": "1e3"}, "yearly", "Enter an amount such as 12.50."),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "x" * 201}, "name", "Ensure this value has at most 200 characters"),
        ({"code": "Bad Code"}, "code", "Use 1-20 lowercase letters"),
        ({"code": "-gold"}, "code", "Use 1-20 lowercase letters"),
        ({"name": "ゴールド"}, "code", "Give the tier a code"),
        ({"currency": "dollars"}, "currency", "Ensure this value has at most 3 characters"),
        ({"currency": "u$d"}, "currency", "Enter a three-letter currency code"),
        ({"description": "x" * 2001}, "description", "Ensure this value has at most 2000 characters"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_publishes_nothing(alpha, ann, changes, field, message):
    response = publish(ann, **changes)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-testid="error-{field}"' in html and message in html
    assert tiers(alpha) == {}


def test_a_code_that_is_taken_is_refused_beside_the_code(alpha, ann):
    assert publish(ann, code="gold").status_code == 302
    again = publish(ann, code="gold", name="Other")
    assert again.status_code == 400
    html = again.content.decode()
    assert 'data-testid="error-code"' in html and "The tier &#x27;ann-gold&#x27; exists already." in html
    assert tiers(alpha)["ann-gold"][0] == "Gold fans"


def test_a_creator_edits_a_tiers_name_benefits_and_prices(alpha, ann):
    assert publish(ann, code="gold").status_code == 302
    form = ann.get("/creator/tiers/ann-gold/").content.decode()
    assert 'value="Gold fans"' in form and 'value="5.00"' in form and 'value="50.00"' in form
    assert "Early videos\nA monthly Q&amp;A</textarea>" in form
    with tenant_context(alpha.tenant):  # a member who joined at $5.00
        fan, _ = customer_upsert(external_id="fan1")
        old = Price.objects.get(code="ann-gold-month")
        member = Membership.objects.create(customer=fan, tier=old.tier, price=old, started_at=timezone.now())

    # renamed, new benefits, same prices: nothing new
    same = ann.post("/creator/tiers/ann-gold/", {"name": "Gold", "description": "Everything", "monthly": "5.00",
                                                  "yearly": "50"})  # fmt: skip
    assert same.status_code == 302
    assert tiers(alpha)["ann-gold"] == ("Gold", True, [("ann-gold-month", "month", 500, True),
                                                        ("ann-gold-year", "year", 5000, True)])  # fmt: skip
    assert "Gold saved." in ann.get("/creator/").content.decode()

    # a new monthly amount is a new price; the yearly one is taken away
    changed = ann.post(
        "/creator/tiers/gold/", {"name": "Gold", "description": "", "monthly": "6", "yearly": ""}
    )
    assert changed.status_code == 302
    assert tiers(alpha)["ann-gold"] == ("Gold", True, [("ann-gold-month", "month", 500, False),
                                                        ("ann-gold-month-2", "month", 600, True),
                                                        ("ann-gold-year", "year", 5000, False)])  # fmt: skip
    assert (
        "new price $6.00 a month (members who joined before keep theirs)"
        in ann.get("/creator/").content.decode()
    )
    with tenant_context(alpha.tenant):
        member.refresh_from_db()
        assert member.price.code == "ann-gold-month" and member.price.unit_amount == 500

    # and back to $5.00: another new price, never an old code again
    assert ann.post("/creator/tiers/gold/", {"name": "Gold", "monthly": "5"}).status_code == 302
    assert [p for p in tiers(alpha)["ann-gold"][2] if p[3]] == [("ann-gold-month-3", "month", 500, True)]


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"name": "", "monthly": "6"}, "name", "This field is required."),
        ({"name": "Gold", "monthly": "", "yearly": ""}, "monthly", "A tier keeps at least one price"),
        ({"name": "Gold", "monthly": "six"}, "monthly", "Enter an amount such as 12.50."),
        ({"name": "Gold", "monthly": "6", "yearly": "0"}, "yearly", "Enter an amount above zero."),
    ],
)
def test_a_bad_edit_is_shown_and_changes_nothing(alpha, ann, body, field, message):
    assert publish(ann, code="gold").status_code == 302
    before = tiers(alpha)
    response = ann.post("/creator/tiers/gold/", body)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-testid="error-{field}"' in html and message in html
    assert tiers(alpha) == before


def test_a_creator_deletes_a_tier_unless_it_has_live_members(alpha, ann):
    assert publish(ann, code="gold").status_code == 302
    assert publish(ann, code="silver", name="Silver").status_code == 302
    assert ann.get("/creator/tiers/gold/delete/").status_code == 405
    with tenant_context(alpha.tenant):
        fan, _ = customer_upsert(external_id="fan1")
        price = Price.objects.get(code="ann-silver-month")
        Membership.objects.create(customer=fan, tier=price.tier, price=price, started_at=timezone.now())

    deleted = ann.post("/creator/tiers/ann-gold/delete/")
    assert deleted.status_code == 302 and deleted["Location"] == "/creator/#tiers"
    gold = tiers(alpha)["ann-gold"]
    assert gold[1] is False and all(not p[3] for p in gold[2])
    page = ann.get("/creator/").content.decode()
    assert "Gold fans is deleted" in page and 'data-tier="ann-gold"' not in page
    assert "ann-gold" not in alpha.client().get("/channels/ann/").content.decode()
    assert ann.get("/creator/tiers/gold/").status_code == 404  # unpublished: gone from the pages

    kept = ann.post("/creator/tiers/silver/delete/")
    assert kept.status_code == 302
    assert "has live members: it stays until they leave" in ann.get("/creator/").content.decode()
    assert tiers(alpha)["ann-silver"][1] is True


def test_another_creators_tier_is_a_404_and_stays_as_it_was(alpha, ann):
    assert publish(ann, code="gold").status_code == 302
    bob = login(alpha, "bob@alpha.test", Role.CREATOR)
    before = tiers(alpha)
    assert bob.get("/creator/tiers/ann-gold/").status_code == 404
    assert bob.get("/creator/tiers/gold/").status_code == 404  # bob's own code space: bob-gold
    assert bob.post("/creator/tiers/ann-gold/", {"name": "Mine", "monthly": "1"}).status_code == 404
    assert bob.post("/creator/tiers/ann-gold/delete/").status_code == 404
    assert ann.get("/creator/tiers/nope/").status_code == 404
    assert tiers(alpha) == before


def test_only_creators_manage_tiers(alpha, ann):
    fan = login(alpha, "fan@alpha.test", Role.CUSTOMER)
    assert fan.get("/creator/tiers/new/").status_code == 403
    assert fan.post("/creator/tiers/new/", GOLD).status_code == 403
    visitor = Client(HTTP_HOST=alpha.host).get("/creator/tiers/new/")
    assert visitor.status_code == 302 and visitor["Location"].startswith("/accounts/login/")
    assert tiers(alpha) == {}
