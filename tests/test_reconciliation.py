"""Reconciliation recomputes pack counters from slots and reports where the two sides disagree."""

import datetime

import pytest

from devices.device_licenses import delete_device
from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeviceLicense
from devices.reconciliation import reconcile
from licensing.models import LicenseSlot, ProductPack
from licensing.services import release_license, request_licenses
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def licensed():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    devs = f.devices(3)
    run_cycle()
    return devs


def test_agreeing_sides_give_a_clean_report(licensed):
    report = reconcile()
    assert report.clean
    assert report.summary() == "Reconciliation: counters, slots and device licenses agree."
    assert DeploymentEvent.objects.get(action="reconcile").outcome == "success"


def test_a_drifted_counter_is_corrected_from_the_slots(licensed):
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(used=7)
    report = reconcile()
    assert report.counters_corrected == {"WE-AAAAA": [7, 3]}
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3


def test_slots_without_licenses_and_licenses_without_slots_and_duplicates_are_reported(licensed):
    a, b, c = licensed
    delete_device(a.pk, actor="alice", delete_licenses=False)  # its slot stays bound
    release_license("WE-AAAAA", b.unit_id)  # "Remove hardware" in the License Portal
    request_licenses("WE-BBBBB", [c.unit_id], ums_fingerprint=f.ums().fingerprint)  # a stray second slot
    report = reconcile()
    assert report.slots_without_license == [["WE-AAAAA", a.unit_id], ["WE-BBBBB", c.unit_id]]
    assert report.licenses_without_slot == [["WE-AAAAA", b.unit_id]]
    assert report.duplicates == [{"unit_id": c.unit_id, "service": "WE", "packs": ["WE-AAAAA", "WE-BBBBB"]}]
    assert report.counters_corrected == {}
    assert report.summary() == (
        "Reconciliation: 2 slot(s) without a device license; 1 device license(s) without a slot; "
        "1 unit ID(s) holding slots in several packs of one service."
    )
    assert DeploymentEvent.objects.get(action="reconcile").outcome == "failed"
    assert LicenseSlot.objects.filter(released_at__isnull=True).count() == 3  # reported, not changed


def test_an_exchange_in_progress_is_not_a_duplicate():
    f.exchanged_device()
    assert DeviceLicense.objects.count() == 2
    assert reconcile().clean


def test_licenses_of_a_merged_pack_match_the_slots_in_the_pack_it_was_merged_into():
    from licensing.services import merge_packs

    f.ald_on()
    f.pack("WE-AAAAA", total=2, expiry=datetime.date(2027, 12, 1), subscription_key=None)
    f.pack("WE-BBBBB", total=5, expiry=datetime.date(2027, 12, 1), subscription_key=None)
    f.register_all()
    f.devices(4)
    run_cycle()
    assert set(DeviceLicense.objects.values_list("pack_id", flat=True)) == {"WE-AAAAA", "WE-BBBBB"}
    merge_packs("WE-BBBBB", ["WE-AAAAA"], actor="alice")
    report = reconcile()
    assert report.clean, report.summary()
