from django.db import migrations


class Migration(migrations.Migration):
    """Ingestion appends each batch's rollup deltas to `metering_rollup_delta` (no row is shared by
    two batches, so concurrent batches never wait on each other); a fold moves them into
    `metering_rollup`. Reads go through `metering_rollup_all`, the union of both, in one statement,
    so they are exact whether or not a fold has run."""

    dependencies = [("metering", "0003_merge_credits_sync")]

    operations = [
        migrations.RunSQL(
            sql="""
            CREATE TABLE metering_rollup_delta (
                id bigserial PRIMARY KEY,
                meter_id bigint NOT NULL,
                customer text NOT NULL,
                hour timestamptz NOT NULL,
                count bigint NOT NULL,
                sum numeric(38, 9) NOT NULL,
                min numeric(38, 9),
                max numeric(38, 9),
                latest numeric(38, 9),
                latest_ts timestamptz
            );
            CREATE INDEX metering_rollup_delta_customer ON metering_rollup_delta (customer, meter_id);
            CREATE VIEW metering_rollup_all AS
                SELECT meter_id, customer, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup
                UNION ALL
                SELECT meter_id, customer, hour, count, sum, min, max, latest, latest_ts FROM metering_rollup_delta;
            """,
            reverse_sql="DROP VIEW metering_rollup_all; DROP TABLE metering_rollup_delta;",
        ),
    ]
