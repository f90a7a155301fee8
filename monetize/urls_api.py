"""`/api/v1/` routes of the billing apps (wiring: the only module that sees every API view)."""

from django.urls import path, re_path

from billing.discounts import api as discounts_api
from billing.entitlements import api as ent
from billing.events import api as webhooks_api
from billing.invoicing import api as invoicing_api
from billing.invoicing import credit_notes_api, credit_values_api, taxes_api
from billing.ledger import api as ledger_api
from billing.ledger import reports_api
from billing.ledger.creators import api as creators_api
from billing.ledger.creators import payouts_api
from billing.ledger.reconciliation import api as reconciliation_api
from billing.memberships import api as memberships_api
from billing.memberships import discounts_api as customer_discounts_api
from billing.metering import api as metering_api
from billing.metering import credits_api
from billing.tiers import api as tiers_api
from console import api as console_api

customer = "customers/<str:external_id>"

urlpatterns = [
    path("tiers", tiers_api.TierListView.as_view(), name="tiers"),
    path("prices/<slug:code>/quote", invoicing_api.PriceQuoteView.as_view(), name="price-quote"),
    path(f"{customer}/invoices", invoicing_api.CustomerInvoiceListView.as_view(), name="customer-invoices"),
    path(
        f"{customer}/invoices/upcoming",
        invoicing_api.UpcomingInvoiceView.as_view(),
        name="customer-invoice-upcoming",
    ),
    path("invoices/<int:invoice_id>", invoicing_api.InvoiceDetailView.as_view(), name="invoice"),
    path("invoices/<int:invoice_id>/pdf", invoicing_api.InvoicePdfView.as_view(), name="invoice-pdf"),
    path("invoices/<int:invoice_id>/void", invoicing_api.InvoiceVoidView.as_view(), name="invoice-void"),
    path(
        "invoices/<int:invoice_id>/mark-uncollectible",
        invoicing_api.InvoiceUncollectibleView.as_view(),
        name="invoice-uncollectible",
    ),
    path(
        "invoices/<int:invoice_id>/credit-notes",
        credit_notes_api.InvoiceCreditNotesView.as_view(),
        name="invoice-credit-notes",
    ),
    path(
        "credit-notes/<int:credit_note_id>",
        credit_notes_api.CreditNoteDetailView.as_view(),
        name="credit-note",
    ),
    path("reports/revenue", reports_api.RevenueReportView.as_view(), name="reports-revenue"),
    path("ledger/accounts", ledger_api.LedgerAccountListView.as_view(), name="ledger-accounts"),
    path("ledger/transactions", ledger_api.LedgerTransactionListView.as_view(), name="ledger-transactions"),
    path(
        "ledger/transactions/<int:transaction_id>",
        ledger_api.LedgerTransactionDetailView.as_view(),
        name="ledger-transaction",
    ),
    path(
        "reconciliation/runs",
        reconciliation_api.ReconciliationRunListView.as_view(),
        name="reconciliation-runs",
    ),
    path(
        "reconciliation/runs/<int:run_id>",
        reconciliation_api.ReconciliationRunDetailView.as_view(),
        name="reconciliation-run",
    ),
    path("creators", creators_api.CreatorListCreateView.as_view(), name="creators"),
    path("creators/<str:handle>", creators_api.CreatorDetailView.as_view(), name="creator"),
    path(
        "creators/<str:handle>/onboarding",
        creators_api.CreatorOnboardingView.as_view(),
        name="creator-onboarding",
    ),
    path("creators/<str:handle>/tiers", creators_api.CreatorTiersView.as_view(), name="creator-tiers"),
    path(
        "creators/<str:handle>/tiers/<str:code>",
        creators_api.CreatorTierDetailView.as_view(),
        name="creator-tier",
    ),
    path("creators/<str:handle>/payouts", payouts_api.CreatorPayoutsView.as_view(), name="creator-payouts"),
    path(
        "creators/<str:handle>/payouts/<int:payout_id>",
        payouts_api.CreatorPayoutDetailView.as_view(),
        name="creator-payout",
    ),
    path("channels/<str:handle>/tiers", creators_api.ChannelTiersView.as_view(), name="channel-tiers"),
    path("tips/checkouts", creators_api.TipCheckoutCreateView.as_view(), name="tip-checkouts"),
    path("coupons", discounts_api.CouponListCreateView.as_view(), name="coupons"),
    path("coupons/<str:code>", discounts_api.CouponDetailView.as_view(), name="coupon"),
    path(
        "coupons/<str:code>/deactivate",
        discounts_api.CouponDeactivateView.as_view(),
        name="coupon-deactivate",
    ),
    path(
        f"{customer}/discount",
        customer_discounts_api.CustomerDiscountView.as_view(),
        name="customer-discount",
    ),
    path("tax-rates", taxes_api.TaxRateListCreateView.as_view(), name="tax-rates"),
    path("credit-values", credit_values_api.CreditValueListView.as_view(), name="credit-values"),
    re_path(
        r"^credit-values/(?P<currency>[A-Za-z]{3})$",
        credit_values_api.CreditValueDetailView.as_view(),
        name="credit-value",
    ),
    path(
        "tax-rates/<int:tax_rate_id>/deactivate",
        taxes_api.TaxRateDeactivateView.as_view(),
        name="tax-rate-deactivate",
    ),
    path("customers", memberships_api.CustomerListCreateView.as_view(), name="customers"),
    path(customer, memberships_api.CustomerDetailView.as_view(), name="customer"),
    path(f"{customer}/entitlements", ent.EntitlementSnapshotView.as_view(), name="customer-entitlements"),
    path(f"{customer}/counters/<slug:feature>", ent.CounterView.as_view(), name="customer-counter"),
    path(f"{customer}/leases/<slug:feature>", ent.LeaseAcquireView.as_view(), name="customer-leases"),
    path(
        f"{customer}/leases/<slug:feature>/<str:lease_id>",
        ent.LeaseDetailView.as_view(),
        name="customer-lease",
    ),
    path(
        f"{customer}/leases/<slug:feature>/<str:lease_id>/renew",
        ent.LeaseRenewView.as_view(),
        name="customer-lease-renew",
    ),
    path(f"{customer}/overrides/<slug:feature>", ent.OverrideView.as_view(), name="customer-override"),
    path(f"{customer}/api-keys", ent.CustomerKeyListCreateView.as_view(), name="customer-keys"),
    path(f"{customer}/api-keys/<int:key_id>", ent.CustomerKeyDetailView.as_view(), name="customer-key"),
    path(
        f"{customer}/api-keys/<int:key_id>/rotate",
        ent.CustomerKeyRotateView.as_view(),
        name="customer-key-rotate",
    ),
    path("checkouts", memberships_api.CheckoutCreateView.as_view(), name="checkouts"),
    path(
        f"{customer}/membership", memberships_api.CustomerMembershipView.as_view(), name="customer-membership"
    ),
    path(
        "memberships/<int:membership_id>/cancel",
        memberships_api.MembershipCancelView.as_view(),
        name="membership-cancel",
    ),
    path(
        "memberships/<int:membership_id>/portal",
        memberships_api.MembershipPortalView.as_view(),
        name="membership-portal",
    ),
    path(
        "memberships/<int:membership_id>/change",
        memberships_api.MembershipChangeView.as_view(),
        name="membership-change",
    ),
    path(
        "memberships/<int:membership_id>/pause",
        memberships_api.MembershipPauseView.as_view(),
        name="membership-pause",
    ),
    path(
        "memberships/<int:membership_id>/resume",
        memberships_api.MembershipResumeView.as_view(),
        name="membership-resume",
    ),
    path("webhook-endpoints", webhooks_api.EndpointListCreateView.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<int:endpoint_id>",
        webhooks_api.EndpointDetailView.as_view(),
        name="webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/deliveries",
        webhooks_api.DeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/resend",
        webhooks_api.DeliveryResendView.as_view(),
        name="webhook-delivery-resend",
    ),
    path(f"{customer}/credits", credits_api.CustomerCreditsView.as_view(), name="customer-credits"),
    path(
        f"{customer}/credits/grants",
        credits_api.CustomerGrantCreateView.as_view(),
        name="customer-credit-grants",
    ),
    path(
        f"{customer}/credits/adjustments",
        credits_api.CustomerCreditAdjustView.as_view(),
        name="customer-credit-adjustments",
    ),
    path(f"{customer}/ai-costs", credits_api.CustomerAiCostsView.as_view(), name="customer-ai-costs"),
    path("ai-costs", credits_api.TenantAiCostsView.as_view(), name="ai-costs"),
    path("burn-rates", credits_api.BurnRateListCreateView.as_view(), name="burn-rates"),
    path("ai-prices", credits_api.AiPriceListCreateView.as_view(), name="ai-prices"),
    path("events", metering_api.EventsView.as_view(), name="events"),
    path("meters", metering_api.MeterListCreateView.as_view(), name="meters"),
    path("usage", metering_api.TenantUsageView.as_view(), name="usage"),
    path("usage/unsynced", metering_api.UnsyncedUsageView.as_view(), name="usage-unsynced"),
    path(f"{customer}/usage", metering_api.CustomerUsageView.as_view(), name="customer-usage"),
    path("reports/overview", console_api.OverviewReportView.as_view(), name="reports-overview"),
    path("entitlements/check", ent.EntitlementCheckView.as_view(), name="entitlements-check"),
    path("keys/verify", ent.KeyVerifyView.as_view(), name="keys-verify"),
]
