"""Realistic test data built through the same services the portal uses."""

import datetime
import itertools

from django.utils import timezone

from ald_portal import clock
from devices.models import (
    DeploymentSettings,
    Device,
    Directory,
    DistributionMethod,
    Firmware,
    RegisteredPack,
)
from devices.services import refresh_registered_packs, ums_identity
from licensing.models import Company, Order, ProductPack, UmsId

_seq = itertools.count(1)


def company(name="Acme GmbH", account="GA-000001"):
    return Company.objects.get_or_create(global_account_id=account, defaults={"name": name})[0]


def firmware(version="11.08.440.01", product="IGEL OS 11", fw_type="LX"):
    return Firmware.objects.get_or_create(product=product, version=version, firmware_type=fw_type)[0]


def directory(name, parent=None):
    return Directory.objects.create(name=name, parent=parent)


def mac_for(n: int) -> str:
    return f"00E0C5{n:06X}"


def device(n=None, fw=None, directory=None, moved_to_bin=False, registered=None, **extra):
    n = next(_seq) if n is None else n
    mac = extra.pop("mac", mac_for(n))
    return Device.objects.create(
        unit_id=extra.pop("unit_id", mac),
        mac=mac,
        name=extra.pop("name", f"ITC{mac}"),
        firmware=fw or firmware(),
        directory=directory,
        moved_to_bin=moved_to_bin,
        registration_date=registered
        or clock.now() - datetime.timedelta(days=30) + datetime.timedelta(seconds=n),
        **extra,
    )


def devices(count, start=1000, **kwargs):
    fw = kwargs.pop("fw", None) or firmware()
    rows = []
    base = clock.now() - datetime.timedelta(days=60)
    for i in range(count):
        n = start + i
        mac = mac_for(n)
        rows.append(
            Device(
                unit_id=mac,
                mac=mac,
                name=f"ITC{mac}",
                firmware=fw,
                registration_date=base + datetime.timedelta(seconds=i),
                **kwargs,
            )
        )
    return Device.objects.bulk_create(rows)


def ums():
    """This portal's UMS ID, registered in the License Portal as set-up data (no action logged: the
    tests of the action log see only the actions they make)."""
    conf = ums_identity()
    return UmsId.objects.get_or_create(
        fingerprint=conf.ums_id_fingerprint,
        defaults={
            "company": company(),
            "name": conf.ums_id_name,
            "certificate_pem": conf.ums_id_certificate_pem,
        },
    )[0]


def pack(
    pack_id,
    product_type="WE",
    total=10,
    start=None,
    expiry="default",
    status="ACTIVE",
    eula=True,
    product_name=None,
    assign=True,
    **extra,
):
    today = clock.today()
    owner = extra.pop("company", None) or company()
    order = None
    if "order" not in extra:
        order = Order.objects.create(company=owner, number=f"ORD-{next(_seq):06d}")
        if eula:
            order.eula_accepted_by, order.eula_accepted_at = "tester", timezone.now()
            order.save()
    p = ProductPack(
        pack_id=pack_id,
        company=owner,
        order=extra.pop("order", order),
        product_name=product_name or f"IGEL {product_type}",
        product_type=product_type,
        total_licenses=total,
        start_date=start or today - datetime.timedelta(days=30),
        expiry_date=today + datetime.timedelta(days=365) if expiry == "default" else expiry,
        status=status,
        **extra,
    )
    p.save()
    if assign:
        p.assigned_ums = ums()
        p.save(update_fields=["assigned_ums"])
    return p


def register_all(conditions=None, method=None):
    """Refresh from the licensing service, as the UMS refresh button does; then apply conditions
    {pack_id: [Directory, ...]} and methods {pack_id: DistributionMethod}."""
    refresh_registered_packs()
    for pack_id, dirs in (conditions or {}).items():
        rp = RegisteredPack.objects.get(pack_id=pack_id)
        rp.distribution_method = DistributionMethod.CONDITIONS
        rp.save(update_fields=["distribution_method"])
        rp.condition_directories.set(dirs)
    for pack_id, m in (method or {}).items():
        RegisteredPack.objects.filter(pack_id=pack_id).update(distribution_method=m)


def ald_on(**changes):
    conf = DeploymentSettings.load()
    conf.ald_enabled = True
    for k, v in changes.items():
        setattr(conf, k, v)
    conf.save()
    return conf


def exchanged_device(exchange_days=7):
    """A device licensed from WE-SOONX (expires 2026-12-06), then, with automatic exchange on and
    WE-LATER (2027-12-01) available, exchanged to WE-LATER; the old license stays, superseded."""
    from devices.engine import run_cycle

    ald_on(exchange_enabled=True, exchange_days=exchange_days)
    pack("WE-SOONX", total=5, expiry=datetime.date(2026, 12, 6))
    pack("WE-LATER", total=5, expiry=datetime.date(2027, 12, 1))
    register_all()
    RegisteredPack.objects.filter(pack_id="WE-LATER").update(active=False)
    dev = device()
    run_cycle()
    RegisteredPack.objects.filter(pack_id="WE-LATER").update(active=True)
    run_cycle()
    return dev
