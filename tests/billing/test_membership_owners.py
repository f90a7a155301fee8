"""One live membership per customer and owner (issue 12): the platform's plan and each creator's
channel tier are separate memberships. A fan on a paid plan who joins a channel keeps the plan and
its entitlements; joining a second creator keeps the first; a new tier of the same creator replaces
that creator's tier only; the database refuses a second live membership of the same owner."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.memberships.models import Membership, MembershipStatus
from tests.billing.test_creators import JSON
from tests.billing.test_creators import create as creator_create
from tests.billing.test_entitlements import check, make_customer
from tests.billing.test_sandbox_checkout import pay
from tests.billing.test_webhooks_in import process_all


@pytest.fixture
def shop(ci_catalog, monkeypatch):
    from billing.providers.services import provider_account_upsert

    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    for handle in ("ann", "bob"):
        assert creator_create(ci_catalog, handle=handle, display_name=handle.title()).status_code == 201
        for code, amount in (("gold", 500), ("silver", 300)):
            made = ci_catalog.api().post(
                f"/api/v1/creators/{handle}/tiers",
                {"code": code, "name": code.title(), "amount": amount, "currency": "usd"},
                content_type=JSON,
            )
            assert made.status_code == 201, made.content
    return ci_catalog


def join(fixture, capture, customer, tier):
    started = fixture.api().post(
        "/api/v1/checkouts",
        {"customer": customer, "tier": tier, "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"},
        content_type=JSON,
    )  # fmt: skip
    assert started.status_code == 201, started.content
    pay(fixture, started.json()["url"], "4242424242424242", capture)
    with capture(execute=True):  # what the applied events do once committed
        process_all(fixture)


def live(fixture, customer="fan1"):
    with tenant_context(fixture.tenant):
        return sorted(
            Membership.objects.filter(
                customer__external_id=customer, status__in=("active", "trialing")
            ).values_list("tier__code", flat=True)
        )


def test_a_fan_keeps_the_plan_beside_two_creators_and_a_tier_change_replaces_only_that_creator(
    shop, django_capture_on_commit_callbacks
):
    make_customer(shop, "fan1")
    join(shop, django_capture_on_commit_callbacks, "fan1", "team")
    assert live(shop) == ["team"]
    join(shop, django_capture_on_commit_callbacks, "fan1", "ann-gold")
    join(shop, django_capture_on_commit_callbacks, "fan1", "bob-silver")
    assert live(shop) == ["ann-gold", "bob-silver", "team"]
    # the plan still decides what the fan may do, and the API's membership is the plan
    decision = check(shop, customer="fan1", feature="concurrent_jobs").json()
    assert decision["tier"] == "team" and decision["allowed"] is True
    plan = shop.api().get("/api/v1/customers/fan1").json()
    assert plan["tier"] == "team"
    # another tier of ann's channel replaces ann's gold, and nothing else
    join(shop, django_capture_on_commit_callbacks, "fan1", "ann-silver")
    assert live(shop) == ["ann-silver", "bob-silver", "team"]
    with tenant_context(shop.tenant):
        gold = Membership.objects.get(customer__external_id="fan1", tier__code="ann-gold")
        assert gold.status == MembershipStatus.CANCELED and gold.creator.handle == "ann"
    # a new plan replaces the plan, never a channel membership
    join(shop, django_capture_on_commit_callbacks, "fan1", "pro")
    assert live(shop) == ["ann-silver", "bob-silver", "pro"]


def test_a_staff_grant_of_a_channel_tier_keeps_the_plan(shop):
    from billing.ledger.creators.models import Creator
    from billing.memberships.models import Customer
    from billing.memberships.services import membership_set_tier
    from billing.tiers.models import Tier

    make_customer(shop, "fan1", tier="team")
    with tenant_context(shop.tenant):
        customer = Customer.objects.get(external_id="fan1")
        membership = membership_set_tier(customer=customer, tier=Tier.objects.get(code="ann-gold"))
        assert membership.creator == Creator.objects.get(handle="ann")
        # the plan's default tier ends the plan only
        membership_set_tier(customer=customer, tier=Tier.objects.get(code="community"))
    assert live(shop) == ["ann-gold"]
    assert check(shop, customer="fan1", feature="concurrent_jobs").json()["tier"] == "community"


def test_the_database_holds_one_live_membership_per_customer_and_owner(shop):
    from billing.memberships.models import Customer
    from billing.tiers.models import Tier

    make_customer(shop, "fan1")
    with tenant_context(shop.tenant):
        customer = Customer.objects.get(external_id="fan1")
        tiers = {t.code: t for t in Tier.objects.all()}

        def add(code):
            return Membership.objects.create(customer=customer, tier=tiers[code], started_at=timezone.now())

        add("team"), add("ann-gold"), add("bob-gold")
        for same_owner in ("pro", "ann-silver"):
            with pytest.raises(IntegrityError), transaction.atomic():
                add(same_owner)
        # the owner follows the tier even when the tier is set by id
        row = Membership(customer=customer, tier_id=tiers["bob-silver"].pk, started_at=timezone.now())
        with pytest.raises(IntegrityError), transaction.atomic():
            row.save()
        assert row.creator_id == tiers["bob-silver"].creator_id


def engine_status(fixture, tier):
    from billing.providers.models import EngineSubscription

    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(customer__external_id="fan1", tier__code=tier)
        return EngineSubscription.objects.get(pk=membership.provider_subscription_id).status


def test_a_new_plan_cancels_the_replaced_subscription_at_the_provider_once(
    shop, django_capture_on_commit_callbacks, monkeypatch
):
    ran = []

    def run_now(task, *, args=(), countdown=None, fallback=""):
        ran.append(task.name)
        task.apply(args=list(args)).get()
        return True

    monkeypatch.setattr("kernel.enqueue.enqueue", run_now)
    make_customer(shop, "fan1")
    join(shop, django_capture_on_commit_callbacks, "fan1", "team")
    join(shop, django_capture_on_commit_callbacks, "fan1", "ann-gold")  # beside the plan: nothing canceled
    assert ran == [] and engine_status(shop, "team") in ("trialing", "active")
    join(shop, django_capture_on_commit_callbacks, "fan1", "pro")
    assert ran == ["memberships.cancel_replaced"]
    # the old plan will not renew (no second bill), and its cancellation, confirmed by the
    # provider's webhook, revives nothing
    with django_capture_on_commit_callbacks(execute=True):
        process_all(shop)
    assert engine_status(shop, "team") == "canceled"
    assert live(shop) == ["ann-gold", "pro"]
    from billing.memberships.services._common import memberships_replaced_sweep

    with tenant_context(shop.tenant):
        later = timezone.now() + dt.timedelta(hours=1)
        assert memberships_replaced_sweep(now=later) == 0  # the provider confirmed it


def test_a_lost_cancel_task_is_swept_and_asked_again(shop, django_capture_on_commit_callbacks, monkeypatch):
    from billing.memberships.services._common import memberships_replaced_sweep

    monkeypatch.setattr("kernel.enqueue.enqueue", lambda task, **kwargs: False)  # the broker lost it
    make_customer(shop, "fan1")
    join(shop, django_capture_on_commit_callbacks, "fan1", "team")
    join(shop, django_capture_on_commit_callbacks, "fan1", "pro")
    assert engine_status(shop, "team") in ("trialing", "active")
    with tenant_context(shop.tenant):
        assert memberships_replaced_sweep() == 0  # too soon: the task may still run
        later = timezone.now() + dt.timedelta(minutes=11)
        with django_capture_on_commit_callbacks(execute=True):
            assert memberships_replaced_sweep(now=later) == 1
    with django_capture_on_commit_callbacks(execute=True):
        process_all(shop)
    assert engine_status(shop, "team") == "canceled" and live(shop) == ["pro"]
    with tenant_context(shop.tenant):
        assert memberships_replaced_sweep(now=later) == 0


def test_the_sandbox_portal_updates_the_plans_card_not_a_newer_channels(
    shop, django_capture_on_commit_callbacks
):
    from billing.invoicing.engine.sandbox import payment_method_subscription

    make_customer(shop, "fan1")
    join(shop, django_capture_on_commit_callbacks, "fan1", "team")
    join(shop, django_capture_on_commit_callbacks, "fan1", "ann-gold")
    with tenant_context(shop.tenant):
        plan, channel = (
            Membership.objects.get(customer__external_id="fan1", tier__code=code).provider_subscription_id
            for code in ("team", "ann-gold")
        )
        assert payment_method_subscription(customer="fan1").pk == channel  # the newest
        assert payment_method_subscription(customer="fan1", prefer=plan).pk == plan


def test_the_api_reads_the_plan_or_one_creators_membership(shop, django_capture_on_commit_callbacks):
    make_customer(shop, "fan1")
    join(shop, django_capture_on_commit_callbacks, "fan1", "team")
    join(shop, django_capture_on_commit_callbacks, "fan1", "ann-gold")
    plan = shop.api().get("/api/v1/customers/fan1/membership").json()
    assert (plan["tier"], plan["membership"]["tier"], plan["membership"]["creator"]) == ("team", "team", None)
    ann = shop.api().get("/api/v1/customers/fan1/membership", {"creator": "ann"}).json()
    assert (ann["tier"], ann["membership"]["tier"], ann["membership"]["creator"]) == (
        "ann-gold",
        "ann-gold",
        "ann",
    )
    bob = shop.api().get("/api/v1/customers/fan1/membership", {"creator": "bob"}).json()
    assert bob == {"membership": None, "tier": None}  # a member of bob's channel never
    bad = shop.api().get("/api/v1/customers/fan1/membership", {"creator": ""})
    assert bad.status_code == 400 and bad.json()["error"]["code"]
