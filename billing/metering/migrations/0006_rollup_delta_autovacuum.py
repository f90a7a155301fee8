from django.db import migrations


class Migration(migrations.Migration):
    """The delta table is a queue (rows are appended, then folded away): vacuum it after a fixed
    number of dead rows rather than a share of the table, or readers wade through dead tuples."""

    dependencies = [("metering", "0005_ai_usage")]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE metering_rollup_delta SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0, "
            "autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000)",
            reverse_sql="ALTER TABLE metering_rollup_delta RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay, autovacuum_analyze_scale_factor, "
            "autovacuum_analyze_threshold)",
        ),
    ]
