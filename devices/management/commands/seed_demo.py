import datetime
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ald_portal import clock
from ald_portal.bulk import insert_rows, refresh_statistics
from devices.importers import import_inventory
from devices.models import Device, Directory, Firmware, RegisteredPack
from devices.schedules import ensure_sweep_schedule
from devices.services import refresh_registered_packs, ums_identity, update_deployment_settings
from devices.tasks import enqueue_sweep
from licensing.importers import import_packs
from licensing.models import Company, Order, ProductPack
from licensing.services import register_ums_id

DEMO_DIR = Path(settings.BASE_DIR) / "demo_data"
DEMO_COMPANY = ("Demo Company AG", "GA-100234")
# Enabled-with-conditions packs need directories to serve: the demo gives the EMP pack to the Bremen
# site and the ADR add-on to the Leeds call center, as an administrator would.
DEMO_CONDITIONS = {"EMP-2PMH4": ["Bremen"], "ADR-R2JGU": ["Call Center"]}

# A generated fleet: unit IDs (= MACs) of one IGEL OUI block the demo inventory does not use, so the
# fleet and the demo devices never collide, and number n always gets the same unit ID.
FLEET_UNIT_PREFIX = "00E0C7"
FLEET_MAX = 16**6 - 1
FLEET_ROOT = "Fleet"
FLEET_SITES = ("Augsburg", "Bochum", "Cottbus", "Dresden", "Erfurt", "Fulda", "Giessen", "Hamm")
FLEET_FIRMWARES = (("IGEL OS 12", "12.3.1", "LX"), ("IGEL OS 11", "11.09.310", "LX"))
FLEET_ORDER = "ORD-FLEET"
INSERT_CHUNK = 5000


def fleet_unit_id(n: int) -> str:
    return f"{FLEET_UNIT_PREFIX}{n:06X}"


def fleet_pack_ids(count: int) -> list[str]:
    if not 1 <= count <= 999:
        raise ValueError(f"packs must be from 1 to 999, not {count!r}")
    return [f"WE-FL{i:03d}" for i in range(1, count + 1)]


def seed_fleet(devices: int, licenses: int | None = None, packs: int = 4, company=None, ums=None) -> dict:
    """Add ``devices`` generated devices (numbers 1..devices; those already there are kept) spread
    over a directory per site, and ``packs`` Workspace Edition packs totalling ``licenses`` (default:
    one per device) assigned to this portal's UMS ID and registered. Bulk inserts, no signal per
    device: ALD licenses them on the next sweep. Running it twice adds nothing."""
    if not 0 <= devices <= FLEET_MAX:
        raise ValueError(f"devices must be from 0 to {FLEET_MAX}, not {devices!r}")
    licenses = devices if licenses is None else licenses
    if licenses < 0:
        raise ValueError(f"licenses must not be negative, not {licenses!r}")
    started = time.monotonic()
    today = clock.today()
    now = clock.now()
    with transaction.atomic():
        if company is None:
            company, _ = Company.objects.get_or_create(
                global_account_id=DEMO_COMPANY[1], defaults={"name": DEMO_COMPANY[0]}
            )
        if ums is None:
            conf = ums_identity()
            ums = register_ums_id(company, conf.ums_id_fingerprint, conf.ums_id_name)
        root = Directory.objects.filter(name=FLEET_ROOT, parent=None).first() or Directory.objects.create(
            name=FLEET_ROOT
        )
        sites = []
        for name in FLEET_SITES:
            site = Directory.objects.filter(name=name, parent=root).first()
            sites.append(site or Directory.objects.create(name=name, parent=root))
        firmwares = [
            Firmware.objects.get_or_create(product=p, version=v, firmware_type=t)[0]
            for p, v, t in FLEET_FIRMWARES
        ]
        created_packs = []
        if licenses and not ProductPack.objects.filter(pack_id__in=fleet_pack_ids(packs)).exists():
            order, _ = Order.objects.get_or_create(
                company=company,
                number=FLEET_ORDER,
                defaults={"eula_accepted_by": "seed_demo", "eula_accepted_at": now},
            )
            share, rest = divmod(licenses, packs)
            for i, pack_id in enumerate(fleet_pack_ids(packs)):
                size = share + (1 if i < rest else 0)
                if size == 0:
                    continue
                ProductPack(
                    pack_id=pack_id,
                    company=company,
                    order=order,
                    product_name="IGEL Workspace Edition",
                    product_type="WE",
                    total_licenses=size,
                    start_date=today - datetime.timedelta(days=30),
                    expiry_date=today + datetime.timedelta(days=365 + 30 * i),
                    assigned_ums=ums,
                ).save()
                created_packs.append(pack_id)
        existing = set(
            Device.objects.filter(unit_id__startswith=FLEET_UNIT_PREFIX).values_list("unit_id", flat=True)
        )
        base = now - datetime.timedelta(days=90)
        rows = []
        for n in range(1, devices + 1):
            unit = fleet_unit_id(n)
            if unit in existing:
                continue
            site = sites[n % len(sites)]
            fw = firmwares[n % 5 == 0]  # every fifth device still on IGEL OS 11
            ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            rows.append(
                (
                    unit,
                    unit,
                    f"ITC{unit}",
                    site.pk,
                    fw.pk,
                    site.name,
                    ip,
                    base + datetime.timedelta(seconds=n),
                )
            )
        fields = [
            "unit_id",
            "mac",
            "name",
            "directory_id",
            "firmware_id",
            "site",
            "last_ip",
            "registration_date",
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            insert_rows(Device, fields, rows[start : start + INSERT_CHUNK])
        added = len(rows)
    refresh_statistics(Device)
    if created_packs:
        refresh_registered_packs(actor="seed_demo", trigger_sweep=False)
    return {
        "devices_added": added,
        "devices_kept": len(existing),
        "packs_added": created_packs,
        "licenses_added": licenses if created_packs else 0,
        "seconds": round(time.monotonic() - started, 2),
    }


class Command(BaseCommand):
    help = (
        "Load the demo: a company, this portal's UMS ID registered in the License Portal, the demo packs "
        "assigned and registered, the demo inventory, and ALD switched on. Running it again changes nothing. "
        "--devices N adds a generated fleet of N devices with Workspace Edition packs for them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--devices",
            type=int,
            default=0,
            metavar="N",
            help="Also add N generated devices (bulk insert; those already there are kept).",
        )
        parser.add_argument(
            "--licenses",
            type=int,
            default=None,
            metavar="M",
            help="Workspace Edition licenses for the generated fleet, in 4 packs (default: N).",
        )

    def handle(self, devices=0, licenses=None, **options):
        if not 0 <= devices <= FLEET_MAX:
            raise CommandError(f"--devices must be a number from 0 to {FLEET_MAX}, not {devices}.")
        if licenses is not None and licenses < 0:
            raise CommandError(f"--licenses must be 0 or more, not {licenses}.")
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
            for note in report.notes:  # packs split or merged since: the portal's sizes stand
                self.stdout.write(note)
            refresh_registered_packs(actor="seed_demo")
            inventory = import_inventory(DEMO_DIR)
            self.stdout.write(inventory.summary())
            for pack_id, names in DEMO_CONDITIONS.items():
                rp = RegisteredPack.objects.filter(pack_id=pack_id).first()
                if rp is not None and not rp.condition_directories.exists():
                    rp.condition_directories.set(Directory.objects.filter(name__in=names))
            if devices:
                fleet = seed_fleet(devices, licenses, company=company, ums=ums)
                if fleet["devices_added"] or fleet["packs_added"]:
                    enqueue_sweep()  # bulk inserts send no registration signal: one sweep licenses them
                self.stdout.write(
                    f"Fleet: {fleet['devices_added']} device(s) added, {fleet['devices_kept']} already there; "
                    f"{fleet['licenses_added']} license(s) in {len(fleet['packs_added'])} new pack(s) "
                    f"({fleet['seconds']} s)."
                )
            ensure_sweep_schedule(conf.sweep_minutes)
            update_deployment_settings("seed_demo", ald_enabled=True)
        self.stdout.write(self.style.SUCCESS("Demo data ready; ALD is on."))
