# InboxEvent now belongs to the `inbox` app (state only: its table stays).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_delivery_claimed_until"),
        ("inbox", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="InboxEvent")],
            database_operations=[],
        ),
    ]
