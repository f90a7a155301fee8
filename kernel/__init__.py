"""The ground floor: mechanisms every app shares (errors, API plumbing, PostgreSQL helpers, Redis and
its breaker, crypto, money, metrics). It imports no app of ours; every app may import it."""
