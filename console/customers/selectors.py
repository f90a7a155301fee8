"""Reads behind the customer list: one queryset that carries each customer's tier, membership
status, MRR and usage this month as columns, so the database filters, sorts and pages them
(a page of 25 is two or three queries, a count and the rows, whatever the tenant's size).

- tier: the tier of the customer's live membership (at most one: trialing, active, past due,
  paused or incomplete), else the tenant's default tier;
- status: that live membership's status, else the status its latest membership ended in
  (canceled, expired), else "none" (never subscribed);
- MRR, as the overview counts it (console.overview.subscriptions): an active or past-due
  membership at its recurring flat or per-seat price x quantity, a yearly price / 12, in the
  price's currency (minor units, rounded half-up once); 0 for everything else. Sorting by MRR
  compares amounts across currencies as numbers;
- usage: one meter's total in the current calendar month (UTC), read from the monthly rollup
  (`metering_rollup_month`, one indexed row per meter, customer and month; deltas not folded yet
  -- at most about a second of ingestion -- are not in it). unique_count meters have no monthly
  total there and are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    DecimalField,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Round
from django.utils import timezone

from billing.discounts.models import Coupon
from billing.discounts.selectors import coupon_list, redeemable_q
from billing.memberships.models import LIVE_STATUSES, Customer, Membership, MembershipStatus
from billing.metering.models import Aggregation, Meter
from billing.metering.selectors import month_start
from billing.tiers.models import Feature, Tier

NO_MEMBERSHIP = "none"
STATUS_CHOICES = [*MembershipStatus.choices, (NO_MEMBERSHIP, "No subscription")]
SORTS = {
    "created": "created_at",
    "tier": "tier_order",
    "status": "membership_status",
    "mrr": "mrr",
    "usage": "usage",
}
DEFAULT_SORT = "-created"
# the monthly rollup's column for each aggregation (a single row per meter, customer and month)
_MONTH_COLUMN = {
    Aggregation.COUNT: "count",
    Aggregation.SUM: "sum",
    Aggregation.MAX: "max",
    Aggregation.MIN: "min",
    Aggregation.LATEST: "latest",
}


@dataclass(frozen=True)
class CustomerFilters:
    search: str = ""
    tier: str = ""
    status: str = ""
    sort: str = DEFAULT_SORT
    meter: Meter | None = None


def list_meters() -> list[Meter]:
    """The meters whose monthly usage the list can show and sort by (active, not unique_count)."""
    return list(
        Meter.objects.filter(active=True).exclude(aggregation=Aggregation.UNIQUE_COUNT).order_by("code")
    )


def list_features() -> list[Feature]:
    return list(Feature.objects.order_by("code"))


def list_tiers() -> list[Tier]:
    return list(Tier.objects.order_by("sort_order", "code"))


def _mrr():
    live = Q(live__status__in=(MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE))
    recurring = (
        Q(live__price__meter="")
        & Q(live__price__interval__in=("month", "year"))
        & Q(live__price__model__in=("flat", "per_seat"))
    )
    unit = Coalesce(
        "live__price__unit_amount_decimal",
        Cast("live__price__unit_amount", DecimalField(max_digits=38, decimal_places=9)),
    )
    months = Case(When(live__price__interval="year", then=Value(12)), default=Value(1))
    monthly = unit * F("live__quantity") / months
    return Case(
        When(live & recurring, then=Cast(Round(monthly), IntegerField())),
        default=Value(0),
        output_field=IntegerField(),
    )


def _usage(meter: Meter):
    column = _MONTH_COLUMN[meter.aggregation]  # one of five fixed names; the values are parameters
    return RawSQL(  # noqa: S611
        f"SELECT m.{column} FROM metering_rollup_month m WHERE m.meter_id = %s AND m.month = %s "
        'AND m.customer = "memberships_customer"."external_id"',
        [meter.pk, month_start(timezone.now())],
        output_field=DecimalField(max_digits=38, decimal_places=9),
    )


def customer_rows(*, default_tier: Tier | None = None) -> QuerySet[Customer]:
    """Every customer with `tier_code`, `tier_name`, `tier_order`, `membership_status`, `mrr` and
    `mrr_currency` (see the module docstring)."""
    ended = (
        Membership.objects.filter(customer=OuterRef("pk"), creator__isnull=True)
        .order_by("-id")
        .values("status")[:1]
    )
    fallback = default_tier
    # the plan (one live per customer); creators' channel memberships would repeat the row
    return Customer.objects.annotate(
        live=FilteredRelation(
            "memberships",
            condition=Q(memberships__status__in=LIVE_STATUSES, memberships__creator__isnull=True),
        )
    ).annotate(
        tier_code=Coalesce(
            F("live__tier__code"), Value(fallback.code if fallback else ""), output_field=CharField()
        ),
        tier_name=Coalesce(
            F("live__tier__name"), Value(fallback.name if fallback else ""), output_field=CharField()
        ),
        tier_order=Coalesce(
            F("live__tier__sort_order"),
            Value(fallback.sort_order if fallback else -1),
            output_field=IntegerField(),
        ),
        membership_status=Coalesce(
            F("live__status"), Subquery(ended), Value(NO_MEMBERSHIP), output_field=CharField()
        ),
        mrr=_mrr(),
        mrr_currency=F("live__price__currency"),
        live_membership_id=F("live__id"),
    )


def default_tier(tiers: list[Tier]) -> Tier | None:
    return next((tier for tier in tiers if tier.is_default), None)


def _matching(rows: QuerySet[Customer], filters: CustomerFilters) -> QuerySet[Customer]:
    if term := filters.search.strip():
        rows = rows.filter(
            Q(external_id__icontains=term) | Q(email__icontains=term) | Q(name__icontains=term)
        )
    if filters.tier:
        rows = rows.filter(tier_code=filters.tier)
    if filters.status:
        rows = rows.filter(membership_status=filters.status)
    return rows


def sort_of(filters: CustomerFilters) -> tuple[str, bool]:
    """(key of SORTS, descending) the list is sorted by: newest first when `filters.sort` is not one."""
    key = filters.sort.lstrip("-")
    if key not in SORTS or (key == "usage" and filters.meter is None):
        return "created", True
    return key, filters.sort.startswith("-")


class SortedRows:
    """The list sorted by a computed column (tier, status, MRR, usage), read a page at a time in
    two queries: the page's ids from a narrow query that computes the sort key of every matching
    customer and nothing else -- usage by one join of this month's rollup rows, not a lookup per
    customer -- then those customers with every column. Sliced by the paginator like a queryset;
    iterating reads every matching customer."""

    def __init__(
        self, *, matching: QuerySet[Customer], rows: QuerySet[Customer], order: tuple, descending: bool, meter
    ):
        self._matching, self._rows, self._order = matching, rows, order
        self._descending, self._meter = descending, meter

    def _ids(self, start: int, stop: int) -> list[int]:
        descending = self._descending
        if self._meter is None:  # a column of customer_rows
            return list(self._matching.order_by(*self._order).values_list("pk", flat=True)[start:stop])
        inner, params = self._matching.order_by().values_list("id", "external_id").query.sql_with_params()
        column = _MONTH_COLUMN[self._meter.aggregation]  # one of five fixed names; the values are parameters
        direction = "DESC NULLS LAST" if descending else "ASC NULLS FIRST"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id FROM ({inner}) c LEFT JOIN metering_rollup_month m ON m.meter_id = %s "  # noqa: S608
                f"AND m.month = %s AND m.customer = c.external_id "
                f"ORDER BY m.{column} {direction}, c.id {'DESC' if descending else 'ASC'} LIMIT %s OFFSET %s",
                [*params, self._meter.pk, month_start(timezone.now()), stop - start, start],
            )
            return [row[0] for row in cursor.fetchall()]

    def __getitem__(self, index: slice) -> list[Customer]:
        start, stop = index.start or 0, index.stop if index.stop is not None else len(self)
        ids = self._ids(start, stop) if stop > start else []
        found = {customer.pk: customer for customer in self._rows.filter(pk__in=ids)} if ids else {}
        return [found[pk] for pk in ids if pk in found]

    def __len__(self) -> int:
        return self._matching.order_by().count()

    def __iter__(self):
        return iter(self[0 : len(self)])


def customer_search(*, filters: CustomerFilters, tiers: list[Tier]) -> QuerySet[Customer] | SortedRows:
    """The list: customers matching the filters (search in the external id, email and name, case
    insensitive; a tier code; a membership status), sorted by `filters.sort` (a key of SORTS, "-"
    for descending; newest first by default), with `usage` of `filters.meter` when given. `tiers`
    is the catalog (list_tiers), read once by the caller.

    Sorted by a customer's own column (created), the database walks that column's index and
    joins the membership of the 25 rows shown only; sorted by a computed column, it computes that
    column alone for every matching customer (hash joins), then reads the 25 rows shown
    (SortedRows)."""
    matching = _matching(customer_rows(default_tier=default_tier(tiers)), filters)
    rows = matching.annotate(usage=_usage(filters.meter)) if filters.meter is not None else matching
    key, descending = sort_of(filters)
    column = F(SORTS[key])
    if key == "usage":  # no usage (NULL) counts as the least
        order = column.desc(nulls_last=True) if descending else column.asc(nulls_first=True)
    else:  # never NULL: a plain order, which an index on the column can give
        order = column.desc() if descending else column.asc()
    tie = F("id").desc() if descending else F("id").asc()
    if key == "created":
        return rows.order_by(order, tie)
    return SortedRows(
        matching=_plain(filters, tiers) if key == "usage" else matching,
        rows=rows,
        order=(order, tie),
        descending=descending,
        meter=filters.meter if key == "usage" else None,
    )


def _plain(filters: CustomerFilters, tiers: list[Tier]) -> QuerySet[Customer]:
    """The matching customers, joining memberships only when a tier or status filter needs them."""
    if filters.tier or filters.status:
        return _matching(customer_rows(default_tier=default_tier(tiers)), filters)
    return _matching(Customer.objects.all(), filters)


def customer_count(*, filters: CustomerFilters, tiers: list[Tier]) -> int:
    """How many customers match (the list's pagination), joining memberships only when a tier or
    status filter needs them."""
    return _plain(filters, tiers).order_by().count()


def redeemable_coupons(*, limit: int = 200) -> list[Coupon]:
    """Coupons a customer can be given now (active, not expired, not used up), newest first: the
    choices of the customer page's "Apply a coupon" (the service checks again when applying)."""
    now = timezone.now()
    return list(coupon_list().filter(redeemable_q(now)).order_by("-id")[:limit])
