from django.db import migrations

_COLUMNS = "count bigint NOT NULL, sum numeric(38, 9) NOT NULL, min numeric(38, 9), max numeric(38, 9), latest numeric(38, 9), latest_ts timestamptz"


class Migration(migrations.Migration):
    """Coarser rollups for the staff pages, kept by the fold from the same deltas: the whole tenant
    per meter and hour, and each customer per meter and calendar month (UTC). Views add the deltas not
    folded yet, so reads stay exact. Existing hourly rollups are summed into them once."""

    dependencies = [("metering", "0006_rollup_delta_autovacuum")]

    operations = [
        migrations.RunSQL(
            sql=f"""
            CREATE TABLE metering_rollup_tenant (meter_id bigint NOT NULL, hour timestamptz NOT NULL, {_COLUMNS},
                                                 PRIMARY KEY (meter_id, hour));
            CREATE TABLE metering_rollup_month (meter_id bigint NOT NULL, customer text NOT NULL,
                                                month timestamptz NOT NULL, {_COLUMNS},
                                                PRIMARY KEY (meter_id, month, customer));
            INSERT INTO metering_rollup_tenant
                SELECT meter_id, hour, sum(count), sum(sum), min(min), max(max),
                       (array_agg(latest ORDER BY latest_ts DESC))[1], max(latest_ts)
                FROM metering_rollup GROUP BY meter_id, hour;
            INSERT INTO metering_rollup_month
                SELECT meter_id, customer, date_trunc('month', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(count),
                       sum(sum), min(min), max(max), (array_agg(latest ORDER BY latest_ts DESC))[1], max(latest_ts)
                FROM metering_rollup GROUP BY 1, 2, 3;
            CREATE VIEW metering_rollup_tenant_all AS
                SELECT meter_id, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup_tenant
                UNION ALL
                SELECT meter_id, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup_delta;
            CREATE VIEW metering_rollup_month_all AS
                SELECT meter_id, customer, month, count, sum, min, max, latest, latest_ts FROM metering_rollup_month
                UNION ALL
                SELECT meter_id, customer, date_trunc('month', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count, sum,
                       min, max, latest, latest_ts FROM metering_rollup_delta;
            """,
            reverse_sql="DROP VIEW metering_rollup_month_all; DROP VIEW metering_rollup_tenant_all; "
            "DROP TABLE metering_rollup_month; DROP TABLE metering_rollup_tenant;",
        ),
    ]
