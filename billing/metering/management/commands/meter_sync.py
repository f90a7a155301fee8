import time

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.metering.sync import SyncAlreadyRunning, meter_sync_run, usage_unsynced
from tenants.selectors import tenant_get_by_slug

BAR = 30


class Command(BaseCommand):
    help = (
        "Report a tenant's usage to its payment providers now (the nightly meter sync), with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument(
            "--late-days",
            type=int,
            default=None,
            help="re-check closed periods that ended within this many days",
        )
        parser.add_argument(
            "--unsynced", action="store_true", help="list the usage not yet reported instead of syncing"
        )

    def handle(self, *args, **options):
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        if options["late_days"] is not None and options["late_days"] < 0:
            raise CommandError("--late-days must not be negative.")
        with tenant_context(tenant):
            if options["unsynced"]:
                return self._unsynced()
            try:
                run = meter_sync_run(
                    trigger="command", late_days=options["late_days"], progress=self._progress()
                )
            except SyncAlreadyRunning as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write("")
        style = self.style.SUCCESS if run.status == "succeeded" else self.style.WARNING
        self.stdout.write(
            style(
                f"meter sync {run.status}: {run.customers} customers, {run.reports} reports, {run.units} units, "
                f"{run.failures} failures in {run.duration.total_seconds():.1f} s (run {run.pk})"
            )
        )
        for error in run.errors:
            self.stdout.write(f"  {error['customer']} {error['meter']}: {error['code']}: {error['message']}")

    def _progress(self):
        last = [0.0]

        def show(done: int, total: int) -> None:
            now = time.monotonic()
            if done != total and now - last[0] < 0.2:  # at most 5 redraws a second
                return
            last[0] = now
            filled = BAR * done // max(total, 1)
            self.stdout.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} customers", ending="")
            self.stdout.flush()

        return show

    def _unsynced(self) -> None:
        rows = usage_unsynced()
        for row in rows:
            self.stdout.write(
                f"{row['customer']} {row['meter']} {row['period_start']:%Y-%m-%d %H:%M}–{row['period_end']:%Y-%m-%d %H:%M} "
                f"{row['quantity']:+d} ({row['kind']})"
            )
        self.stdout.write(f"{len(rows)} unsynced deltas")
