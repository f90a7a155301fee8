"""The catalog as YAML: import (idempotent) and export.

File format (examples in config/tiers/):

    currency: usd                      # default currency of the prices below
    features:
      private_projects: {name: Private projects, kind: limit, unit: project}
      build_minutes:    {name: Build minutes, kind: metered, unit: minute}
      sso:              {name: SSO, kind: boolean}
      api_requests:     {name: API requests, kind: rate, unit: request}
    tiers:
      - code: community
        name: Community
        default: true                  # exactly one tier: the free fallback
        public: true                   # listed on the pricing page (default true)
        features:
          private_projects: 0          # limit/metered: a number, `unlimited`, or false (off)
          build_minutes: 1000
          sso: false                   # boolean: true/false
          api_requests: 60/minute      # rate: N/second|minute|hour|day, or false
      - code: pro
        name: Pro
        credits_per_period: 500        # credits granted each billing period (they expire with it)
        prices:
          - {code: pro-monthly, unit_amount: 1900, interval: month, trial_days: 14}
          - {code: pro-yearly, unit_amount: 19000, interval: year}
          # model: flat | per_seat | graduated | volume | package (+ tiers: [...] / package_size)

    meters:                            # usage meters (billing/metering), by code
      build-minutes: {event_type: build.finished, aggregation: sum, value_property: minutes,
                      feature: build_minutes, unit: minute}
      # aggregation: count | sum | max | min | unique_count | latest; filters: {property: value | [values]}

Import rules: features and tiers are matched by code and updated in place; a tier's features are
replaced by the file's; prices are matched by `code` (or, without one, by their terms). A price
whose terms changed is never edited: the old one is deactivated and a new one created; active
prices no longer in the file are deactivated. Tiers missing from the file are left alone and
reported. A meter's definition is fixed once created (its rollups were aggregated by it): a file
that changes one is refused (give the new definition a new code); new meters aggregate the events
already stored. Re-importing the same file writes nothing. Any error names file, line and field and
the whole import changes nothing.
"""

from billing.tiers.catalog.apply import catalog_apply, catalog_import
from billing.tiers.catalog.export import catalog_export
from billing.tiers.catalog.parse import CODE_RE, CURRENCY_RE, RATE_RE, WINDOW_NAMES, WINDOWS, catalog_parse
from billing.tiers.catalog.sections import CatalogSection, ImportReport, catalog_section_register
from billing.tiers.exceptions import CatalogError

__all__ = [
    "CODE_RE",
    "CURRENCY_RE",
    "RATE_RE",
    "WINDOWS",
    "WINDOW_NAMES",
    "CatalogError",
    "CatalogSection",
    "ImportReport",
    "catalog_apply",
    "catalog_export",
    "catalog_import",
    "catalog_parse",
    "catalog_section_register",
]
