"""Invariant 5: a task can run twice, late, or after a worker died, and still converge."""

import datetime

import pytest

from ald_portal import clock
from devices import engine
from devices.engine import run_cycle
from devices.ils import IlsUnavailable, InProcessLicensingClient
from devices.models import Device, DeviceLicense, LicenseRequest, LicenseWait, RegisteredPack
from licensing.models import LicenseSlot, ProductPack
from licensing.services import request_licenses
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_claim_left_by_a_dead_worker_is_replayed_against_the_same_pack():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    dev = f.device()
    # The dead worker had claimed the device for WE-BBBBB and the licensing service had bound the
    # slot, but the worker died before recording the license.
    LicenseRequest.objects.create(
        device=dev,
        service="WE",
        pack_id="WE-BBBBB",
        claim_token="dead",
        claimed_until=clock.now() - datetime.timedelta(seconds=1),
    )
    request_licenses("WE-BBBBB", [dev.unit_id], ums_fingerprint=f.ums().fingerprint)

    run_cycle()

    lic = DeviceLicense.objects.get(device=dev)
    assert lic.pack_id == "WE-BBBBB"
    assert dict(ProductPack.objects.values_list("pack_id", "used")) == {"WE-AAAAA": 0, "WE-BBBBB": 1}
    assert LicenseSlot.objects.filter(unit_id=dev.unit_id).count() == 1
    assert not LicenseRequest.objects.exists()


def test_a_live_claim_of_another_worker_is_left_alone():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    dev = f.device()
    LicenseRequest.objects.create(
        device=dev,
        service="WE",
        pack_id="WE-AAAAA",
        claim_token="busy",
        claimed_until=clock.now() + datetime.timedelta(seconds=60),
    )
    run_cycle()
    assert not DeviceLicense.objects.exists()
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0
    clock.freeze(clock.now() + datetime.timedelta(seconds=61))  # the other worker died
    run_cycle()
    assert DeviceLicense.objects.get(device=dev).pack_id == "WE-AAAAA"


class UnreachableClient(InProcessLicensingClient):
    def request_licenses(self, pack_id, unit_ids):
        raise IlsUnavailable("connection refused")


def test_unreachable_licensing_service_leaves_devices_waiting_and_the_next_sweep_licenses_them(monkeypatch):
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    devs = f.devices(3)
    monkeypatch.setattr(engine, "get_client", lambda fingerprint: UnreachableClient(fingerprint))
    report = run_cycle().as_dict()
    assert report["waiting_reasons"] == {"ils_unreachable": 3}
    assert set(LicenseWait.objects.values_list("reason", flat=True)) == {"ils_unreachable"}
    # the claims stay, naming the pack asked, and may be taken over at once
    assert set(LicenseRequest.objects.values_list("pack_id", flat=True)) == {"WE-AAAAA"}
    monkeypatch.undo()
    run_cycle()
    assert DeviceLicense.objects.filter(device__in=devs).count() == 3
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3
    assert not LicenseWait.objects.exists() and not LicenseRequest.objects.exists()


def test_pack_refused_at_the_licensing_service_sends_devices_to_the_next_pack():
    """The UMS still believes a pack is usable, but the licensing service archived it meanwhile."""
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(status="ARCHIVED")  # no refresh in between
    f.devices(2)
    run_cycle()
    assert set(DeviceLicense.objects.values_list("pack_id", flat=True)) == {"WE-BBBBB"}
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0


def test_counts_stale_in_the_ums_are_corrected_by_the_licensing_service_answer():
    """Another UMS used licenses of the pack since the last refresh: the answer says so."""
    f.ald_on()
    f.pack("WE-AAAAA", total=3)
    f.register_all()
    request_licenses("WE-AAAAA", [f.mac_for(n) for n in range(900, 902)], ums_fingerprint=f.ums().fingerprint)
    f.devices(3)
    run_cycle()
    assert DeviceLicense.objects.count() == 1
    assert LicenseWait.objects.filter(reason="no_free_license").count() == 2
    assert RegisteredPack.objects.get(pack_id="WE-AAAAA").used == 3


def dead_worker_bound(dev, pack_id):
    """A worker claimed ``dev`` for ``pack_id``, the licensing service bound the slot, and the
    worker died before recording the license."""
    LicenseRequest.objects.create(
        device=dev,
        service="WE",
        pack_id=pack_id,
        claim_token="dead",
        claimed_until=clock.now() - datetime.timedelta(seconds=1),
    )
    request_licenses(pack_id, [dev.unit_id], ums_fingerprint=f.ums().fingerprint)


def test_slot_of_a_dead_workers_claim_is_freed_when_the_device_went_to_the_recycle_bin():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    dev = f.device()
    dead_worker_bound(dev, "WE-AAAAA")
    Device.objects.filter(pk=dev.pk).update(moved_to_bin=True)
    run_cycle()
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0
    assert not LicenseSlot.objects.filter(released_at__isnull=True).exists()
    assert not LicenseRequest.objects.exists()


def test_slot_of_a_dead_workers_claim_is_freed_when_its_pack_was_deactivated_meanwhile():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    dev = f.device()
    dead_worker_bound(dev, "WE-AAAAA")
    RegisteredPack.objects.filter(pack_id="WE-AAAAA").update(active=False)
    run_cycle()
    assert DeviceLicense.objects.get(device=dev).pack_id == "WE-BBBBB"
    assert dict(ProductPack.objects.values_list("pack_id", "used")) == {"WE-AAAAA": 0, "WE-BBBBB": 1}
    assert list(
        LicenseSlot.objects.filter(released_at__isnull=True).values_list("pack__pack_id", flat=True)
    ) == ["WE-BBBBB"]


class ClaimStolenClient(InProcessLicensingClient):
    """Another worker takes our claim over while the licensing service answers (our lease ran out)."""

    def request_licenses(self, pack_id, unit_ids):
        result = super().request_licenses(pack_id, unit_ids)
        LicenseRequest.objects.update(claim_token="other-worker")
        return result


def test_a_worker_that_lost_its_claim_records_nothing_and_the_new_holder_converges(monkeypatch):
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    dev = f.device()
    monkeypatch.setattr(engine, "get_client", lambda fingerprint: ClaimStolenClient(fingerprint))
    run_cycle()
    assert not DeviceLicense.objects.exists()  # not recorded twice: the claim is the other worker's
    assert LicenseRequest.objects.get().claim_token == "other-worker"
    monkeypatch.undo()
    clock.freeze(clock.now() + datetime.timedelta(seconds=600))  # the other worker died too
    run_cycle()
    assert DeviceLicense.objects.get(device=dev).pack_id == "WE-AAAAA"
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1
    assert LicenseSlot.objects.count() == 1
