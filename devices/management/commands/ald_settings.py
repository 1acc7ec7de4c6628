import argparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from devices.models import DeploymentSettings
from devices.services import update_deployment_settings


def whole_number(value):
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


class Command(BaseCommand):
    help = "Print the deployment settings (Licenses > Deployment) and change them."

    def add_arguments(self, parser):
        on = parser.add_mutually_exclusive_group()
        on.add_argument("--enable", action="store_true", help="Enable automatic deployment.")
        on.add_argument("--disable", action="store_true", help="Disable automatic deployment.")
        ex = parser.add_mutually_exclusive_group()
        ex.add_argument("--exchange", action="store_true", help="Enable automatic license exchange.")
        ex.add_argument("--no-exchange", action="store_true", help="Disable automatic license exchange.")
        parser.add_argument(
            "--exchange-days", type=whole_number, metavar="N", help="Exchange N days before expiration."
        )
        parser.add_argument(
            "--sweep-minutes", type=whole_number, metavar="N", help="Sweep all devices every N minutes."
        )

    def handle(self, **o):
        changes = {}
        if o["enable"] or o["disable"]:
            changes["ald_enabled"] = bool(o["enable"])
        if o["exchange"] or o["no_exchange"]:
            changes["exchange_enabled"] = bool(o["exchange"])
        if o["exchange_days"] is not None:
            changes["exchange_days"] = o["exchange_days"]
        if o["sweep_minutes"] is not None:
            changes["sweep_minutes"] = o["sweep_minutes"]
        if changes:
            try:
                made = update_deployment_settings("manage.py ald_settings", **changes)
            except ValidationError as exc:
                raise CommandError("; ".join(m for msgs in exc.message_dict.values() for m in msgs)) from None
            for line in made or ["No change."]:
                self.stdout.write(line)
        conf = DeploymentSettings.load()
        yes = {True: "on", False: "off"}
        self.stdout.write(f"Automatic deployment: {yes[conf.ald_enabled]}")
        self.stdout.write(f"Sweep interval: every {conf.sweep_minutes} minute(s)")
        self.stdout.write(
            f"Automatic license exchange: {yes[conf.exchange_enabled]}, "
            f"{conf.exchange_days} day(s) before expiration"
        )
        self.stdout.write(f"UMS ID: {conf.ums_id_name or '-'} {conf.ums_id_fingerprint or '(not made yet)'}")
