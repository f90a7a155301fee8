"""Routes of the customer pages (included by monetize/urls_tenant.py)."""

from django.urls import path

from console.customers import views

urlpatterns = [
    path("customers/", views.customer_list, name="customers"),
    path("customers/<str:external_id>/", views.customer_detail, name="customer"),
    path("customers/<str:external_id>/<slug:action>/", views.customer_action, name="customer-action"),
]
