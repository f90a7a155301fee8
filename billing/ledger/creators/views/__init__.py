"""Creator pages: the creator's dashboard and their channel tiers (`/creator/`), the public channel
page with its join and tip forms (`/channels/<handle>/`), the fan's supporting page, and the
sandbox's connected-account onboarding page. Routes: billing/ledger/creators/urls.py."""
