"""Creator pages: the creator's dashboard, the fan's supporting page and the sandbox's
connected-account onboarding page. Routes: billing/ledger/creators/urls.py."""
