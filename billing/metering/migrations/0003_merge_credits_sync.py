from django.db import migrations


class Migration(migrations.Migration):
    """Credits and meter sync were built side by side; this joins the two branches."""

    dependencies = [
        ("metering", "0002_credits"),
        ("metering", "0002_sync"),
    ]

    operations = []
