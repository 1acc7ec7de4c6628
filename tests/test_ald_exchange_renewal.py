"""Renewal (UMS 6: the same pack renewed) and automatic license exchange (UMS 12: another pack with a
later expiry, N days before expiration), both through the ALD cycle and its claims."""

import datetime

import pytest

from ald_portal import clock
from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeviceLicense, LicenseWait
from devices.services import refresh_registered_packs
from licensing.models import LicenseSlot, ProductPack
from tests import factories as f

pytestmark = pytest.mark.django_db

SOON = datetime.date(2026, 12, 6)  # three days after the frozen today, 2026-12-03
LATER = datetime.date(2027, 12, 1)


def holding(device):
    return list(
        DeviceLicense.objects.filter(device=device)
        .order_by("issued_at", "pk")
        .values_list("pack_id", "expires_at", "status", "source")
    )


def licensed_device(exchange_days=None, later_pack=True):
    f.ald_on(exchange_enabled=exchange_days is not None, exchange_days=exchange_days or 7)
    f.pack("WE-SOONX", total=5, expiry=SOON)
    if later_pack:
        f.pack("WE-LATER", total=5, expiry=LATER)
    f.register_all()
    from devices.models import RegisteredPack

    RegisteredPack.objects.filter(pack_id="WE-LATER").update(active=False)
    dev = f.device()
    run_cycle()
    RegisteredPack.objects.filter(pack_id="WE-LATER").update(active=True)
    assert holding(dev) == [("WE-SOONX", SOON, "CURRENT", "ALD")]
    return dev


def test_without_exchange_a_license_that_expires_soon_is_left_alone():
    dev = licensed_device(exchange_days=None)
    run_cycle()
    assert holding(dev) == [("WE-SOONX", SOON, "CURRENT", "ALD")]


def test_exchange_moves_the_device_to_a_pack_with_a_later_expiry_and_keeps_the_old_license():
    dev = licensed_device(exchange_days=7)
    run_cycle()
    assert holding(dev) == [
        ("WE-SOONX", SOON, "SUPERSEDED", "ALD"),
        ("WE-LATER", LATER, "CURRENT", "EXCHANGE"),
    ]
    assert dict(ProductPack.objects.values_list("pack_id", "used")) == {"WE-SOONX": 1, "WE-LATER": 1}
    event = DeploymentEvent.objects.get(action="exchange")
    assert (
        event.message
        == "WE license exchanged: WE-SOONX (expires 2026-12-06) -> WE-LATER (expires 2027-12-01)"
    )
    run_cycle()  # converged: nothing more to do
    assert DeviceLicense.objects.count() == 2


def test_exchange_window_boundary_is_n_days_before_expiration():
    dev = licensed_device(exchange_days=2)  # expires in 3 days: outside a 2-day window
    run_cycle()
    assert holding(dev)[-1][0] == "WE-SOONX"
    clock.freeze(clock.now() + datetime.timedelta(days=1))  # 2026-12-04: 2 days left
    run_cycle()
    assert holding(dev)[-1][:3] == ("WE-LATER", LATER, "CURRENT")


def test_no_pack_with_a_later_expiry_leaves_the_device_waiting_with_that_reason():
    dev = licensed_device(exchange_days=7, later_pack=False)
    f.pack("WE-EARLY", total=5, expiry=datetime.date(2026, 12, 5))  # free, but ends even sooner
    refresh_registered_packs()
    run_cycle()
    assert holding(dev) == [("WE-SOONX", SOON, "CURRENT", "ALD")]
    assert LicenseWait.objects.get(device=dev).reason == "no_later_pack"
    f.pack("WE-NEWER", total=5, expiry=LATER)
    refresh_registered_packs()
    run_cycle()
    assert holding(dev)[-1][:3] == ("WE-NEWER", LATER, "CURRENT")
    assert not LicenseWait.objects.exists()


def test_renewed_pack_renews_the_licenses_of_its_devices_without_a_second_slot():
    f.ald_on()
    f.pack("WE-RENEW", total=5, expiry=SOON)
    f.register_all()
    devs = f.devices(3)
    run_cycle()
    ProductPack.objects.filter(pack_id="WE-RENEW").update(expiry_date=LATER)  # renewed in the License Portal
    refresh_registered_packs()
    run_cycle()
    for dev in devs:
        assert holding(dev) == [
            ("WE-RENEW", SOON, "SUPERSEDED", "ALD"),
            ("WE-RENEW", LATER, "CURRENT", "RENEWAL"),
        ]
    assert ProductPack.objects.get(pack_id="WE-RENEW").used == 3
    assert LicenseSlot.objects.count() == 3
    assert DeploymentEvent.objects.filter(action="renew").count() == 3
    assert DeploymentEvent.objects.filter(action="refresh_pack", pack_id="WE-RENEW").count() == 1


def test_renewal_wins_over_exchange_and_works_for_a_full_pack():
    dev = licensed_device(exchange_days=7)
    ProductPack.objects.filter(pack_id="WE-SOONX").update(expiry_date=LATER, total_licenses=1)
    refresh_registered_packs()
    run_cycle()
    assert holding(dev)[-1] == ("WE-SOONX", LATER, "CURRENT", "RENEWAL")
    assert ProductPack.objects.get(pack_id="WE-LATER").used == 0


def test_the_demo_pack_expiring_soon_is_exchanged_where_licenses_allow():
    """The demo WE-BRFVW expires 2026-12-06; with exchange on, its devices wait for a later pack."""
    import io

    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    run_cycle()
    assert DeviceLicense.objects.filter(pack_id="WE-BRFVW", status="CURRENT").count() == 24
    call_command("ald_settings", "--exchange", stdout=io.StringIO())
    run_cycle()
    # the later packs NT6ZM and JTWXX are full, DEMO has no conditions: nothing to exchange to
    assert LicenseWait.objects.filter(service="WE", reason="no_later_pack").count() == 24
    ProductPack.objects.filter(pack_id="WE-JTWXX").update(total_licenses=110)  # 30 more bought
    refresh_registered_packs()
    run_cycle()
    assert DeviceLicense.objects.filter(pack_id="WE-JTWXX", source="EXCHANGE", status="CURRENT").count() == 24
    assert DeviceLicense.objects.filter(pack_id="WE-BRFVW", status="SUPERSEDED").count() == 24
    assert not LicenseWait.objects.filter(service="WE", reason="no_later_pack").exists()
