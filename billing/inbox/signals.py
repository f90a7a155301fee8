from django.dispatch import Signal

# Sent inside the transaction that applies a provider event carrying an invoice of a provider that
# runs its own subscriptions (after the event's payments are recorded); kwargs: provider, invoice
# (providers.base.InvoiceState), occurred_at, event_id. Invoicing mirrors it (connected in its
# AppConfig.ready: the inbox sits below invoicing and cannot call it); a receiver returns True when
# it applied something. Errors propagate, so the inbox retries or parks the event.
provider_invoice_reported = Signal()
# Sent inside the transaction that applies a provider event about a creator's connected account
# (providers.base.ConnectedAccountState; Stripe's `account.updated`); kwargs: provider, account,
# occurred_at, event_id. The creators app (billing.ledger.creators) updates the payout status; a
# receiver returns True when it applied something.
provider_account_reported = Signal()
# Sent inside the transaction that applies a provider event about a payout to a creator's connected
# account (providers.base.PayoutReport; Stripe's `payout.paid` / `payout.failed` of a Connect
# account); kwargs: provider, payout, occurred_at, event_id. The creators app marks its Payout paid or
# failed; a receiver returns True when it applied something.
provider_payout_reported = Signal()
