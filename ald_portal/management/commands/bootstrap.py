import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from devices.models import DeploymentSettings, Device
from devices.schedules import ensure_all
from licensing.models import ProductPack


class Command(BaseCommand):
    help = (
        "First start on a database: load the demo data when the database is empty, make sure the ALD "
        "sweep schedule exists, and create an administrator account if there is none. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data.")

    def handle(self, no_demo=False, **options):
        if not no_demo and not Device.objects.exists() and not ProductPack.objects.exists():
            self.stdout.write("Empty database: loading the demo data.")
            call_command("seed_demo", stdout=self.stdout)
        for schedule, _ in ensure_all(DeploymentSettings.load().sweep_minutes):
            self.stdout.write(f"Schedule {schedule.name!r}: every {schedule.minutes} minute(s).")
        User = get_user_model()
        password_file = settings.VAR_DIR / "admin-password.txt"
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@example.com", password)
            settings.VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            # shown once, when it is made; later starts only say where it is kept
            self.stdout.write(f"Log in as admin with the password {password} (kept in {password_file}).")
        elif password_file.exists():
            self.stdout.write(f"Log in as admin; the password is in {password_file}.")
        else:
            self.stdout.write("Log in with your existing administrator account.")
