"""What an administrator does in the License Portal reaches the UMS at the next refresh (each sweep
refreshes first): removed hardware revokes the license and keeps the device out of ALD; a merge
moves the licenses along with their slots."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from devices.engine import run_cycle
from devices.models import DeploymentEvent, Device, DeviceLicense, RegisteredPack
from devices.reconciliation import reconcile
from devices.services import refresh_registered_packs
from licensing.models import LicenseSlot, ProductPack
from licensing.services import merge_packs, remove_hardware, split_pack
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_removed_hardware_revokes_the_license_and_the_device_is_not_relicensed():
    f.ald_on()
    f.pack("WE-AAAAA", total=2)
    f.register_all()
    kept, removed, waiting = f.devices(3)
    run_cycle()
    remove_hardware("WE-AAAAA", [removed.unit_id], actor="ilp-admin", accept_terms=True)
    run_cycle()  # refreshes first
    lic = DeviceLicense.objects.get(device=removed)
    assert lic.status == "REVOKED"
    removed.refresh_from_db()
    assert removed.ald_excluded is True
    assert (
        removed.ald_excluded_reason
        == f"hardware {removed.unit_id} removed from WE-AAAAA in the License Portal on 2026-12-03"
    )
    # the freed license went to the device that was waiting, not back to the removed one
    assert DeviceLicense.objects.get(device=waiting, status="CURRENT").pack_id == "WE-AAAAA"
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 2
    assert (
        DeviceLicense.objects.filter(status="CURRENT").count()
        == 2
        == LicenseSlot.objects.filter(released_at__isnull=True).count()
    )
    assert DeploymentEvent.objects.filter(action="remove", device=removed).count() == 1
    assert reconcile().clean


def test_a_merge_moves_the_licenses_with_their_slots_and_a_later_renewal_reaches_them():
    f.ald_on()
    f.pack("WE-AAAAA", total=2, expiry=datetime.date(2027, 12, 1))
    f.pack("WE-BBBBB", total=5, expiry=datetime.date(2027, 12, 1))
    f.register_all()
    devs = f.devices(3)
    run_cycle()
    merge_packs("WE-BBBBB", ["WE-AAAAA"], actor="ilp-admin")
    refresh_registered_packs()
    assert set(DeviceLicense.objects.values_list("pack_id", flat=True)) == {"WE-BBBBB"}
    assert RegisteredPack.objects.get(pack_id="WE-AAAAA").ils_status == "MERGED"
    assert reconcile().clean
    ProductPack.objects.filter(pack_id="WE-BBBBB").update(expiry_date=datetime.date(2028, 12, 1))
    run_cycle()
    assert [DeviceLicense.objects.get(device=d, status="CURRENT").expires_at for d in devs] == [
        datetime.date(2028, 12, 1)
    ] * 3


def test_a_pack_merged_away_before_the_ums_knew_it_is_not_registered():
    f.pack("WE-AAAAA", total=2, expiry=datetime.date(2027, 12, 1))
    f.pack("WE-BBBBB", total=5, expiry=datetime.date(2027, 12, 1))
    merge_packs("WE-BBBBB", ["WE-AAAAA"], actor="ilp-admin")
    refresh_registered_packs()
    assert list(RegisteredPack.objects.values_list("pack_id", flat=True)) == ["WE-BBBBB"]


def test_split_refusal_names_the_real_limit():
    f.pack("UDC3-AAAAA", product_type="UDC3", total=15, expiry=None)
    from licensing.services import request_licenses

    request_licenses("UDC3-AAAAA", [f.mac_for(n) for n in range(3)], ums_fingerprint=f.ums().fingerprint)
    with pytest.raises(ValidationError) as err:
        split_pack("UDC3-AAAAA", count=100, actor="ilp-admin")
    assert "Number of slots 100 is more than the 12 free licenses of UDC3-AAAAA" in str(err.value)
    assert Device.objects.count() == 0 and ProductPack.objects.get(pack_id="UDC3-AAAAA").total_licenses == 15
