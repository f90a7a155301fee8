"""Routes of the reconciliation pages (included by monetize/urls_tenant.py)."""

from django.urls import path

from billing.ledger.reconciliation import views

urlpatterns = [
    path("", views.run_list, name="staff-reconciliation"),
    path("<int:run_id>/", views.run_detail, name="staff-reconciliation-run"),
    path("<int:run_id>/again/", views.run_again, name="staff-reconciliation-again"),
]
