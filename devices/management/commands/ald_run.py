import json

from django.core.management.base import BaseCommand

from devices.engine import run_cycle


class Command(BaseCommand):
    help = "Run one Automatic License Deployment cycle now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be deployed; change nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, dry_run=False, json=False, **options):
        report = run_cycle(dry_run=dry_run).as_dict()
        if json:
            self.stdout.write(_json(report))
            return
        if report["skipped"]:
            self.stdout.write(f"Nothing done: {report['skipped']}.")
            return
        verb = "would be licensed" if dry_run else "licensed"
        self.stdout.write(
            f"Devices {verb}: {report['devices_licensed']}; waiting: {report['devices_waiting']}"
        )
        for reason, count in report["waiting_reasons"].items():
            self.stdout.write(f"  licenses waiting, {reason}: {count}")
        for pack_id, counts in sorted(report["packs"].items()):
            self.stdout.write(f"  {pack_id}: {counts['used']}/{counts['total']} used, {counts['free']} free")


def _json(value):
    return json.dumps(value, indent=2, sort_keys=True)
