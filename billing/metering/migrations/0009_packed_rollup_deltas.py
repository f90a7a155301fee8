from django.db import migrations

_ADD_UP = "sum(count), sum(sum), min(min), max(max), (array_agg(latest ORDER BY latest_ts DESC))[1], max(latest_ts)"
_MONTH = "date_trunc('month', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def _merge(table: str) -> str:
    return f"""DO UPDATE SET count = {table}.count + EXCLUDED.count, sum = {table}.sum + EXCLUDED.sum,
        min = LEAST({table}.min, EXCLUDED.min), max = GREATEST({table}.max, EXCLUDED.max),
        latest = CASE WHEN {table}.latest_ts IS NULL OR EXCLUDED.latest_ts >= {table}.latest_ts
                      THEN EXCLUDED.latest ELSE {table}.latest END,
        latest_ts = GREATEST({table}.latest_ts, EXCLUDED.latest_ts)"""


# the cells of the packed delta rows `d`, shaped like rollup rows (sums are NULL where they equal counts)
_CELLS = (
    "SELECT d.meter_id, u.customer, d.hour, u.count, coalesce(u.sum, u.count) AS sum, u.min, u.max, u.latest, "
    "u.latest_ts FROM metering_rollup_delta d, unnest(d.customers, d.counts, d.sums, d.mins, d.maxs, d.latests, "
    "d.latest_tss) AS u(customer, count, sum, min, max, latest, latest_ts)"
)


class Migration(migrations.Migration):
    """Rollup deltas packed per batch, meter and hour: one row holds the batch's contribution for
    every customer as parallel arrays (and its total over them for the tenant's hourly totals),
    instead of one row per customer. Deltas still pending in the old shape are folded first.
    Irreversible: going back would need the packed deltas folded by the code of this release."""

    dependencies = [("metering", "0008_leaner_ingest_indexes")]

    operations = [
        migrations.RunSQL(
            sql=f"""
            WITH moved AS (DELETE FROM metering_rollup_delta RETURNING *),
            hourly AS (
                INSERT INTO metering_rollup (meter_id, customer, hour, count, sum, min, max, latest, latest_ts)
                SELECT meter_id, customer, hour, {_ADD_UP} FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                ON CONFLICT (meter_id, customer, hour) {_merge("metering_rollup")}
            ),
            tenant AS (
                INSERT INTO metering_rollup_tenant (meter_id, hour, count, sum, min, max, latest, latest_ts)
                SELECT meter_id, hour, {_ADD_UP} FROM moved GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (meter_id, hour) {_merge("metering_rollup_tenant")}
            )
            INSERT INTO metering_rollup_month (meter_id, customer, month, count, sum, min, max, latest, latest_ts)
            SELECT meter_id, customer, {_MONTH}, {_ADD_UP} FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 3, 2
            ON CONFLICT (meter_id, month, customer) {_merge("metering_rollup_month")};

            DROP VIEW metering_rollup_all;
            DROP VIEW metering_rollup_tenant_all;
            DROP VIEW metering_rollup_month_all;
            DROP TABLE metering_rollup_delta;

            CREATE TABLE metering_rollup_delta (
                meter_id bigint NOT NULL,
                hour timestamptz NOT NULL,
                customers text[] NOT NULL,
                counts bigint[] NOT NULL,
                sums numeric[],
                mins numeric[],
                maxs numeric[],
                latests numeric[],
                latest_tss timestamptz[],
                total_count bigint NOT NULL,
                total_sum numeric NOT NULL,
                total_min numeric,
                total_max numeric,
                total_latest numeric,
                total_latest_ts timestamptz
            ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                    autovacuum_analyze_threshold = 500);
            CREATE VIEW metering_rollup_all AS
                SELECT meter_id, customer, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup
                UNION ALL {_CELLS};
            CREATE VIEW metering_rollup_tenant_all AS
                SELECT meter_id, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup_tenant
                UNION ALL
                SELECT meter_id, hour, total_count, total_sum, total_min, total_max, total_latest, total_latest_ts
                FROM metering_rollup_delta;
            CREATE VIEW metering_rollup_month_all AS
                SELECT meter_id, customer, month, count, sum, min, max, latest, latest_ts FROM metering_rollup_month
                UNION ALL
                SELECT meter_id, customer, {_MONTH}, count, sum, min, max, latest, latest_ts FROM ({_CELLS}) c;
            """,
        ),
    ]
