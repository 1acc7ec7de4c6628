from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from devices.importers import import_inventory
from devices.models import Directory, RegisteredPack
from devices.schedules import ensure_sweep_schedule
from devices.services import refresh_registered_packs, ums_identity, update_deployment_settings
from licensing.importers import import_packs
from licensing.models import Company
from licensing.services import register_ums_id

DEMO_DIR = Path(settings.BASE_DIR) / "demo_data"
DEMO_COMPANY = ("Demo Company AG", "GA-100234")
# Enabled-with-conditions packs need directories to serve: the demo gives the EMP pack to the Bremen
# site and the ADR add-on to the Leeds call center, as an administrator would.
DEMO_CONDITIONS = {"EMP-2PMH4": ["Bremen"], "ADR-R2JGU": ["Call Center"]}


class Command(BaseCommand):
    help = (
        "Load the demo: a company, this portal's UMS ID registered in the License Portal, the demo packs "
        "assigned and registered, the demo inventory, and ALD switched on. Running it again changes nothing."
    )

    def handle(self, **options):
        with transaction.atomic():
            company, _ = Company.objects.get_or_create(
                global_account_id=DEMO_COMPANY[1], defaults={"name": DEMO_COMPANY[0]}
            )
            conf = ums_identity()
            ums = register_ums_id(
                company, conf.ums_id_fingerprint, conf.ums_id_name, conf.ums_id_certificate_pem
            )
            report, _ = import_packs(
                DEMO_DIR / "ilp-product-packs.csv", company, accept_eula_by="seed_demo", assign_to=ums
            )
            self.stdout.write(report.summary())
            refresh_registered_packs(actor="seed_demo")
            inventory = import_inventory(DEMO_DIR)
            self.stdout.write(inventory.summary())
            for pack_id, names in DEMO_CONDITIONS.items():
                rp = RegisteredPack.objects.filter(pack_id=pack_id).first()
                if rp is not None and not rp.condition_directories.exists():
                    rp.condition_directories.set(Directory.objects.filter(name__in=names))
            ensure_sweep_schedule(conf.sweep_minutes)
            update_deployment_settings("seed_demo", ald_enabled=True)
        self.stdout.write(self.style.SUCCESS("Demo data ready; ALD is on."))
