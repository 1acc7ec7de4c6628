from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices.services import new_ums_id, ums_identity


class Command(BaseCommand):
    help = (
        "Show this UMS's UMS ID (name, SHA-256 fingerprint), export its certificate for the License "
        "Portal, or make a new key pair (then use Change UMS ID in the License Portal)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--export", metavar="FILE", help="Write the certificate (.crt, PEM) to FILE.")
        parser.add_argument(
            "--new", action="store_true", help="Make a new key pair; the old UMS ID stops working."
        )

    def handle(self, **o):
        conf = new_ums_id("manage.py ums_id --new") if o["new"] else ums_identity()
        self.stdout.write(f"UMS ID name: {conf.ums_id_name}")
        self.stdout.write(f"SHA-256 fingerprint: {conf.ums_id_fingerprint}")
        if o["export"]:
            path = Path(o["export"])
            try:
                path.write_text(conf.ums_id_certificate_pem)
            except OSError as exc:
                raise CommandError(f"--export {path}: {exc.strerror}") from None
            self.stdout.write(f"Certificate written to {path}")
        if o["new"]:
            self.stdout.write(
                "New key pair made: register the new certificate in the License Portal with Change UMS ID."
            )
