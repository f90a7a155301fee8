"""The owner's overview: the figures of the staff's home page (`/dashboard/`) and of
`GET /api/v1/reports/overview`, each with a daily series over a date range (see selectors)."""
