from django.db import migrations


class Migration(migrations.Migration):
    """Less index work per ingested event. Nothing reads raw events by customer (usage comes from the
    rollups), so the events' (customer, ts) btree becomes a BRIN index on ts (nearly free to keep,
    enough for audits and re-aggregation by time). The delta queue needs no key: folds take every row."""

    dependencies = [("metering", "0007_rollup_tenant_month")]

    operations = [
        migrations.RunSQL(
            sql="""
            DROP INDEX IF EXISTS metering_event_customer_ts;
            CREATE INDEX metering_event_ts_brin ON metering_event USING brin (ts);
            ALTER TABLE metering_rollup_delta DROP COLUMN id;
            """,
            reverse_sql="""
            ALTER TABLE metering_rollup_delta ADD COLUMN id bigserial PRIMARY KEY;
            DROP INDEX IF EXISTS metering_event_ts_brin;
            CREATE INDEX metering_event_customer_ts ON metering_event (customer, ts);
            """,
        ),
    ]
