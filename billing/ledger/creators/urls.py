"""Routes of the creator pages (included by monetize/urls_tenant.py)."""

from django.urls import path

from billing.ledger.creators.views import channel, dashboard, tiers

urlpatterns = [
    path("creator/", dashboard.creator_dashboard, name="creator-dashboard"),
    path("creator/onboarding/", dashboard.creator_onboard, name="creator-onboarding"),
    path("creator/payouts/", dashboard.creator_payout, name="creator-payout"),
    path("creator/tiers/new/", tiers.tier_new, name="creator-tier-new"),
    path("creator/tiers/<slug:code>/", tiers.tier_edit, name="creator-tier-edit"),
    path("creator/tiers/<slug:code>/delete/", tiers.tier_delete, name="creator-tier-delete"),
    path("channels/<str:handle>/", channel.channel, name="channel"),
    path("channels/<str:handle>/join/", channel.channel_join, name="channel-join"),
    path("channels/<str:handle>/tip/", channel.channel_tip, name="channel-tip"),
    path("account/supporting/", dashboard.fan_supporting, name="fan-supporting"),
    path("sandbox/connect/<str:token>/", dashboard.sandbox_connect, name="sandbox-connect"),
]
