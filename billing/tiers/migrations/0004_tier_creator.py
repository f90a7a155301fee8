# A creator's channel tier is owned by a Creator (billing.ledger.creators), no longer by a user: a
# tier some user owned gets that user's creator profile (made here when missing).

import django.db.models.deletion
from django.db import migrations, models


def to_creators(apps, schema_editor):
    Tier = apps.get_model("tiers", "Tier")
    Creator = apps.get_model("creators", "Creator")
    for tier in Tier.objects.filter(creator_user__isnull=False).select_related("creator_user"):
        user = tier.creator_user
        creator = Creator.objects.filter(user=user).first()
        if creator is None:
            creator = Creator.objects.create(
                handle=f"user-{user.pk}", display_name=getattr(user, "name", "") or user.email, email=user.email,
                user=user,
            )
        tier.creator = creator
        tier.save(update_fields=["creator"])


class Migration(migrations.Migration):

    dependencies = [
        ("creators", "0001_initial"),
        ("tiers", "0003_usage_prices"),
    ]

    operations = [
        migrations.RenameField(model_name="tier", old_name="creator", new_name="creator_user"),
        migrations.AddField(
            model_name="tier",
            name="creator",
            field=models.ForeignKey(
                blank=True, help_text="Set for a creator's channel tier.", null=True,
                on_delete=django.db.models.deletion.PROTECT, related_name="tiers", to="creators.creator",
            ),
        ),
        migrations.RunPython(to_creators, migrations.RunPython.noop),
        migrations.RemoveField(model_name="tier", name="creator_user"),
    ]
