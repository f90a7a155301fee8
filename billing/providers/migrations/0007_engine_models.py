from django.db import migrations, models


class Migration(migrations.Migration):
    """TossPayments' subscription, checkout and charge rows become our engine's, for every provider
    that only charges a saved method (Toss, Stripe in engine mode)."""

    dependencies = [("providers", "0006_toss_charge_invoice")]

    operations = [
        migrations.RenameModel("TossSubscription", "EngineSubscription"),
        migrations.RenameModel("TossCheckout", "EngineCheckout"),
        migrations.RenameModel("TossCharge", "EngineCharge"),
        migrations.RenameIndex(
            model_name="enginesubscription",
            new_name="providers_e_status_b6f5a2_idx",
            old_name="providers_t_status_03192f_idx",
        ),
        migrations.RenameIndex(
            model_name="enginesubscription",
            new_name="providers_e_status_8dae02_idx",
            old_name="providers_t_status_99e864_idx",
        ),
        migrations.AddField(
            model_name="enginesubscription", name="provider", field=models.CharField(default="toss", max_length=16)
        ),
        migrations.AddField(
            model_name="enginecheckout", name="provider", field=models.CharField(default="toss", max_length=16)
        ),
    ]
