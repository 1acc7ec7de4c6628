from django.core.management.base import BaseCommand

from devices.models import DeploymentSettings
from devices.schedules import ensure_sweep_schedule


class Command(BaseCommand):
    help = "Create the ALD sweep schedule if it is missing, or bring its interval up to date. Idempotent."

    def handle(self, **options):
        schedule, created = ensure_sweep_schedule(DeploymentSettings.load().sweep_minutes)
        self.stdout.write(
            f"{'Created' if created else 'Kept'} schedule {schedule.name!r}: every {schedule.minutes} minute(s)."
        )
