# Lives on the UMS side: with --assign it registers the packs in the UMS, and licensing never imports devices.
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ald_portal.importing import ImportRejected
from licensing.importers import import_packs
from licensing.models import Company


class Command(BaseCommand):
    help = (
        "Import Product Packs from a License Portal pack list (CSV). A file with any bad row is rejected "
        "whole. --assign also assigns the packs to this portal's UMS ID and registers them in the UMS "
        "with their default distribution method."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_file")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; write nothing.")
        parser.add_argument("--company", help="Company name (created with --global-account-id if new).")
        parser.add_argument("--global-account-id", help="The company's Global Account ID.")
        parser.add_argument(
            "--accept-eula",
            action="store_true",
            help="Accept the EULA of the orders in the file (packs of orders without it are not deployed).",
        )
        parser.add_argument(
            "--assign",
            action="store_true",
            help="Assign the packs to this portal's UMS ID and register them in the UMS.",
        )

    def company(self, name, account_id):
        if account_id:
            company = Company.objects.filter(global_account_id=account_id).first()
            if company is None:
                if not name:
                    raise CommandError(
                        f"--global-account-id={account_id!r}: no such company; add --company NAME to create it."
                    )
                company = Company.objects.create(name=name, global_account_id=account_id)
            return company
        if name:
            matches = list(Company.objects.filter(name=name))
            if len(matches) == 1:
                return matches[0]
            raise CommandError(
                f"--company={name!r}: {'no' if not matches else 'more than one'} such company; "
                "give --global-account-id too."
            )
        companies = list(Company.objects.all()[:2])
        if len(companies) == 1:
            return companies[0]
        raise CommandError(
            "Name the company: --company NAME --global-account-id ID "
            f"({'no company exists yet' if not companies else 'there is more than one'})."
        )

    def handle(
        self,
        csv_file,
        dry_run=False,
        company=None,
        global_account_id=None,
        accept_eula=False,
        assign=False,
        **options,
    ):
        # Everything, the company and this portal's UMS ID included, is written in one transaction:
        # a rejected file leaves no trace, and a dry run does the whole import and rolls it back, so it
        # reports exactly what a real run would do.
        try:
            with transaction.atomic():
                self._import(csv_file, dry_run, company, global_account_id, accept_eula, assign)
                if dry_run:
                    transaction.set_rollback(True)
        except ImportRejected as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError(f"{csv_file}: {exc}") from None

    def _import(self, csv_file, dry_run, company, global_account_id, accept_eula, assign):
        from devices.services import refresh_registered_packs, ums_identity
        from licensing.services import register_ums_id

        the_company = self.company(company, global_account_id)
        ums = None
        if assign:
            conf = ums_identity()
            ums = register_ums_id(
                the_company, conf.ums_id_fingerprint, conf.ums_id_name, conf.ums_id_certificate_pem
            )
        report, packs = import_packs(
            csv_file,
            the_company,
            accept_eula_by="import_packs --accept-eula" if accept_eula else "",
            assign_to=ums,
        )
        report.dry_run = dry_run
        self.stdout.write(report.summary())
        for note in report.notes:  # rows where the License Portal's own changes win
            self.stdout.write(note)
        if ums is not None:
            result = refresh_registered_packs(actor="import_packs")
            counts = f"{len(result['registered'])} new, {len(result['refreshed'])} refreshed."
            if dry_run:
                self.stdout.write(f"Would assign to UMS ID {ums.name}; would register in the UMS: {counts}")
            else:
                self.stdout.write(
                    f"Assigned to UMS ID {ums.name} ({ums.fingerprint[:14]}...); registered in the UMS: {counts}"
                )
            pending = sorted({p.order.number for p in packs if p.order and not p.order.eula_accepted})
            if pending:
                self.stdout.write(
                    self.style.WARNING(
                        f"EULA not accepted for order(s) {', '.join(pending)}: their packs are not deployed "
                        "until it is (--accept-eula)."
                    )
                )
