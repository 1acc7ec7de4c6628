from django.core.management.base import BaseCommand, CommandError

from ald_portal.importing import ImportRejected
from devices.importers import import_inventory


class Command(BaseCommand):
    help = (
        "Import a UMS inventory from IMI v3 JSON files (firmwares, tcdirectories, thinclients with "
        "details). PATH is a folder holding them or one file. A file with any bad record is rejected "
        "whole. New devices are handed to Automatic License Deployment."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; write nothing.")

    def handle(self, path, dry_run=False, **options):
        try:
            report = import_inventory(path, dry_run=dry_run)
        except ImportRejected as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(report.summary())
