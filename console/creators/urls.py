"""Routes of the staff creator pages (included by monetize/urls_tenant.py)."""

from django.urls import path

from console.creators import views

urlpatterns = [
    path("creators/", views.creator_list, name="staff-creators"),
    path("creators/payouts/", views.payout_list, name="staff-payouts"),
]
