from django.core.management.base import BaseCommand

from devices.models import DeploymentSettings
from devices.schedules import ensure_all


class Command(BaseCommand):
    help = (
        "Create the ALD sweep, notification and reconciliation schedules if they are missing, or bring their intervals "
        "up to date. Idempotent."
    )

    def handle(self, **options):
        for schedule, created in ensure_all(DeploymentSettings.load().sweep_minutes):
            self.stdout.write(
                f"{'Created' if created else 'Kept'} schedule {schedule.name!r}: "
                f"every {schedule.minutes} minute(s)."
            )
