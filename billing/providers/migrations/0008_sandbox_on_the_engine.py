from django.db import migrations, models


def sandbox_to_engine(apps, schema_editor):
    """The sandbox's own subscriptions and checkouts become our engine's (its card behaviour is the
    saved method); their schedule, dunning and pending changes carry over."""
    from kernel.crypto import encrypt

    SandboxSubscription = apps.get_model("providers", "SandboxSubscription")
    SandboxCheckout = apps.get_model("providers", "SandboxCheckout")
    EngineSubscription = apps.get_model("providers", "EngineSubscription")
    EngineCheckout = apps.get_model("providers", "EngineCheckout")
    for old in SandboxSubscription.objects.all():
        EngineSubscription.objects.get_or_create(
            id=old.id,
            defaults={
                "provider": "sandbox", "mode": "test", "customer": old.customer, "customer_key": "",
                "billing_key_encrypted": encrypt(old.card), "card_company": "Sandbox", "price": old.price,
                "interval": old.interval, "unit_amount": old.unit_amount, "currency": old.currency,
                "quantity": old.quantity, "status": old.status, "period_number": 1,
                "period_start": old.period_start, "period_end": old.period_end,
                "cancel_at_period_end": old.cancel_at_period_end, "pending_price": old.pending_price,
                "pending_unit_amount": old.pending_unit_amount, "pending_interval": old.pending_interval,
                "failed_attempts": old.failed_attempts, "next_retry_at": old.next_retry_at,
            },
        )  # fmt: skip
    for old in SandboxCheckout.objects.all():
        EngineCheckout.objects.get_or_create(
            id=old.id,
            defaults={
                "provider": "sandbox", "mode": "test", "customer": old.customer, "customer_key": "",
                "email": old.email, "price": old.price, "interval": old.interval, "unit_amount": old.unit_amount,
                "currency": old.currency, "quantity": old.quantity, "trial_days": old.trial_days,
                "success_url": old.success_url, "cancel_url": old.cancel_url, "completed_at": old.paid_at,
                "subscription_id": old.subscription_id,
            },
        )  # fmt: skip


DROP_PERIOD_UNIQUE = """
DO $$
DECLARE found record;
BEGIN
  FOR found IN
    SELECT con.conname FROM pg_constraint con
    JOIN pg_class t ON t.oid = con.conrelid
    WHERE t.relname = 'providers_enginecharge' AND t.relnamespace = current_schema()::regnamespace
      AND con.contype = 'u'
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM unnest(con.conkey) AS k(n)
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n) = ARRAY['period', 'subscription_id']
  LOOP
    EXECUTE format('ALTER TABLE providers_enginecharge DROP CONSTRAINT %I', found.conname);
  END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    """The sandbox runs on our engine: its subscriptions and checkouts move to the engine's tables;
    an engine charge is a period's or an upgrade's proration (unique per period only for the first)."""

    dependencies = [("providers", "0007_engine_models")]

    operations = [
        migrations.RunPython(sandbox_to_engine, migrations.RunPython.noop),
        migrations.RemoveField(model_name="sandboxcheckout", name="subscription"),
        migrations.SeparateDatabaseAndState(
            # a tenant schema cloned from the template has the unique constraint under another name
            # (`…_subscription_id_period_key`): drop whichever unique constraint covers the pair
            state_operations=[
                migrations.RemoveConstraint(model_name="enginecharge", name="providers_toss_charge_period_unique")
            ],
            database_operations=[migrations.RunSQL(DROP_PERIOD_UNIQUE, migrations.RunSQL.noop)],
        ),
        migrations.AddField(
            model_name="enginecharge",
            name="kind",
            field=models.CharField(
                choices=[("period", "A period's invoice"), ("proration", "An upgrade's proration")],
                default="period",
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="enginecharge",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "period")),
                fields=("subscription", "period"),
                name="providers_engine_charge_period_unique",
            ),
        ),
        migrations.DeleteModel(name="SandboxCheckout"),
        migrations.DeleteModel(name="SandboxSubscription"),
    ]
