from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from licensing.license_files import LicenseFileError, load_public_key, verify_license_file

# Exit status per kind of problem, so scripts can tell them apart.
EXIT_CODES = {"malformed": 2, "wrong_key": 3, "tampered": 4, "expired": 5}


MAX_FILE_BYTES = 1_000_000  # a license file is a few hundred bytes


class Command(BaseCommand):
    help = (
        "Check a license file: prints 'valid ...' and exits 0, or says what is wrong (malformed, "
        "wrong key, tampered with the field, expired) and exits 2, 3, 4 or 5."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .lic file")
        parser.add_argument(
            "--public-key",
            metavar="PEM",
            help="verify with this Ed25519 public key (PEM file) instead of this portal's key",
        )

    def handle(self, file, public_key=None, **options):
        path = Path(file)
        try:
            if path.exists() and not path.is_file():  # a directory, /dev/zero, a pipe: never read forever
                raise CommandError(f"{file}: is not a regular file.", returncode=2)
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"{file}: cannot be read: {exc.strerror or exc}", returncode=2) from None
        if len(data) > MAX_FILE_BYTES:
            raise CommandError(
                f"{file}: is larger than {MAX_FILE_BYTES} bytes: not a license file.", returncode=2
            )
        key = None
        if public_key:
            try:
                key = load_public_key(Path(public_key).read_bytes())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--public-key {public_key}: {exc}", returncode=2) from None
        try:
            content = verify_license_file(data, public_key=key)
        except LicenseFileError as exc:
            raise CommandError(f"{file}: {exc.message}", returncode=EXIT_CODES[exc.kind]) from None
        self.stdout.write(f"valid: {content.describe()}")
