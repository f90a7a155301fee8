from django.apps import AppConfig


class MonetizeConfig(AppConfig):
    """Project-level wiring that must run after every other app is ready (listed last)."""

    name = "monetize"

    def ready(self) -> None:
        # django-pgtrigger teaches Django's migrate/makemigrations its trigger-aware autodetector;
        # django-tenants replaces `migrate` with `migrate_schemas`, which pgtrigger does not know.
        from django.core.management.commands import makemigrations
        from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand

        MigrateSchemasCommand.autodetector = makemigrations.Command.autodetector
