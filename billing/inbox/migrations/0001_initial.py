# The inbox was split out of the `webhooks` app: the model moves in state only, its table
# (webhooks_inboxevent) and constraints stay as they are.

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("webhooks", "0003_delivery_claimed_until"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="InboxEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("provider", models.CharField(max_length=16)),
                        ("event_id", models.CharField(max_length=255)),
                        ("event_type", models.CharField(blank=True, max_length=100)),
                        ("payload", models.JSONField()),
                        ("received_at", models.DateTimeField(auto_now_add=True)),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("applied", "Applied"), ("ignored", "Ignored (not acted on)"), ("failed", "Failed (will retry)"), ("dead", "Dead (needs a replay)")], default="pending", max_length=8)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "webhooks_inboxevent",
                        "ordering": ["-id"],
                        "indexes": [models.Index(fields=["status", "next_attempt_at"], name="webhooks_inbox_due")],
                        "constraints": [models.UniqueConstraint(fields=("provider", "event_id"), name="webhooks_inbox_unique_event")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
