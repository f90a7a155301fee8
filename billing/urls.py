"""`/api/v1/` routes of the billing apps."""

from django.urls import path

from billing.memberships import api as memberships_api

urlpatterns = [
    path("customers", memberships_api.CustomerListCreateView.as_view(), name="customers"),
    path("customers/<str:external_id>", memberships_api.CustomerDetailView.as_view(), name="customer"),
]
