"""Routes of the invoice pages (included by monetize/urls_tenant.py)."""

from django.urls import path

from billing.invoicing.pages import views

urlpatterns = [
    path("account/billing/", views.customer_billing, name="customer-billing"),
    path(
        "account/billing/invoices/<int:invoice_id>/pdf/",
        views.customer_invoice_pdf,
        name="customer-invoice-pdf",
    ),
    path("invoices/", views.invoice_list, name="staff-invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="staff-invoice"),
    path("invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="staff-invoice-pdf"),
    path("invoices/<int:invoice_id>/credit-notes/", views.invoice_credit, name="staff-invoice-credit"),
    path(
        "invoices/<int:invoice_id>/<slug:action>/",
        views.invoice_action,
        name="staff-invoice-action",
    ),
]
