"""Pack selection and eligibility of the ALD engine (docs/DESIGN.md section 4, docs/DOMAIN.md 2.4)."""

import datetime
from collections import Counter

import pytest

from ald_portal import clock
from devices.engine import run_cycle
from devices.models import (
    DeploymentEvent,
    DeviceLicense,
    DistributionMethod,
    LicenseWait,
    RegisteredPack,
    WaitingReason,
)
from licensing.models import LicenseSlot, ProductPack
from tests import factories as f

pytestmark = pytest.mark.django_db


def licensed_from(service="WE"):
    return Counter(
        DeviceLicense.objects.filter(service=service, status="CURRENT").values_list("pack_id", flat=True)
    )


def waits():
    return Counter(LicenseWait.objects.values_list("service", "reason"))


def test_nothing_happens_while_ald_is_off():
    f.pack("WE-AAAAA", total=5)
    f.register_all()
    f.devices(3)
    report = run_cycle()
    assert report.skipped == "automatic deployment is off"
    assert not DeviceLicense.objects.exists()
    assert not LicenseSlot.objects.exists()


def test_most_allocated_pack_first_then_earliest_registered():
    f.ald_on()
    f.pack("WE-FIRST", total=10)
    f.pack("WE-LATER", total=10)
    f.pack("WE-FULLR", total=10)
    f.register_all()
    # WE-FULLR was registered last but has the most allocated licenses: it is used first.
    from licensing.services import request_licenses

    request_licenses("WE-FULLR", [f.mac_for(n) for n in range(900, 904)], ums_fingerprint=f.ums().fingerprint)
    from devices.services import refresh_registered_packs

    refresh_registered_packs()
    f.devices(12)
    run_cycle()
    # 6 more fill WE-FULLR (4 + 6 = 10); the other 6 go to the earlier registered of the two equals.
    assert licensed_from() == {"WE-FULLR": 6, "WE-FIRST": 6}
    assert ProductPack.objects.get(pack_id="WE-FULLR").used == 10
    assert ProductPack.objects.get(pack_id="WE-LATER").used == 0


def test_pack_smaller_than_demand_is_used_up_and_the_rest_wait():
    f.ald_on()
    f.pack("WE-SMALL", total=3)
    f.register_all()
    f.devices(5)
    report = run_cycle().as_dict()
    assert licensed_from() == {"WE-SMALL": 3}
    assert waits() == {("WE", WaitingReason.NO_FREE_LICENSE): 2}
    assert report["devices_licensed"] == 3
    assert report["waiting_reasons"] == {"no_free_license": 2}
    assert report["packs"]["WE-SMALL"] == {"total": 3, "used": 3, "free": 0}
    # the earliest registered devices got the licenses
    waiting_ids = set(LicenseWait.objects.values_list("device__registration_date", flat=True))
    licensed_ids = set(DeviceLicense.objects.values_list("device__registration_date", flat=True))
    assert max(licensed_ids) < min(waiting_ids)


def test_demand_spills_over_into_the_next_pack():
    f.ald_on()
    f.pack("WE-AAAAA", total=3)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    f.devices(7)
    run_cycle()
    assert licensed_from() == {"WE-AAAAA": 3, "WE-BBBBB": 4}
    assert not LicenseWait.objects.exists()


def test_recycle_bin_devices_are_never_licensed():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    binned = f.device(moved_to_bin=True)
    kept = f.device()
    run_cycle()
    assert set(DeviceLicense.objects.values_list("device_id", flat=True)) == {kept.pk}
    assert not LicenseWait.objects.filter(device=binned).exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expiry": datetime.date(2026, 12, 2)},  # expired yesterday
        {"start": datetime.date(2026, 12, 10)},  # not yet active
        {"status": "ARCHIVED"},
        {"eula": False},
    ],
)
def test_packs_not_in_force_are_never_used(kwargs):
    f.ald_on()
    f.pack("WE-BADPK", total=10, **kwargs)
    f.register_all()
    f.devices(2)
    run_cycle()
    assert not DeviceLicense.objects.exists()
    assert ProductPack.objects.get(pack_id="WE-BADPK").used == 0
    assert waits() == {("WE", WaitingReason.NO_ELIGIBLE_PACK): 2}


def test_deactivated_and_disabled_packs_are_never_used():
    f.ald_on()
    f.pack("WE-DEACT", total=10)
    f.pack("WE-DISAB", total=10)
    f.register_all(method={"WE-DISAB": DistributionMethod.DISABLED})
    RegisteredPack.objects.filter(pack_id="WE-DEACT").update(active=False)
    f.devices(2)
    run_cycle()
    assert not DeviceLicense.objects.exists()
    assert waits() == {("WE", WaitingReason.NO_ELIGIBLE_PACK): 2}


def test_default_distribution_methods_workspace_edition_enabled_others_with_conditions():
    for pack_id, ptype in [
        ("WE-AAAAA", "WE"),
        ("EMP-AAAAA", "EMP"),
        ("ADR-AAAAA", "ADDON"),
        ("DEMO-AAAAA", "DEMO"),
        ("UDC3-AAAAA", "UDC3"),
        ("UDP-AAAAA", "UDP"),
        ("UMA-AAAAA", "UMA"),
    ]:
        f.pack(pack_id, product_type=ptype)
    f.register_all()
    methods = dict(RegisteredPack.objects.values_list("pack_id", "distribution_method"))
    assert methods == {
        "WE-AAAAA": "ENABLED",
        "EMP-AAAAA": "CONDITIONS",
        "ADR-AAAAA": "CONDITIONS",
        "DEMO-AAAAA": "CONDITIONS",
        "UDC3-AAAAA": "CONDITIONS",
        "UDP-AAAAA": "CONDITIONS",
        "UMA-AAAAA": "CONDITIONS",
    }


def test_emp_goes_only_to_the_devices_its_conditions_select_including_subdirectories():
    f.ald_on()
    bremen = f.directory("Bremen")
    it = f.directory("IT", parent=bremen)
    berlin = f.directory("Berlin")
    f.pack("WE-AAAAA", total=50)
    f.pack("EMP-AAAAA", product_type="EMP", total=50)
    f.register_all(conditions={"EMP-AAAAA": [bremen]})
    in_bremen = f.device(directory=bremen)
    in_it = f.device(directory=it)
    in_berlin = f.device(directory=berlin)
    in_root = f.device()
    run_cycle()
    emp = set(DeviceLicense.objects.filter(service="EMP").values_list("device_id", flat=True))
    assert emp == {in_bremen.pk, in_it.pk}
    we = set(DeviceLicense.objects.filter(service="WE").values_list("device_id", flat=True))
    assert we == {in_bremen.pk, in_it.pk, in_berlin.pk, in_root.pk}
    assert not LicenseWait.objects.exists()  # Berlin and root devices do not need EMP at all


def test_conditions_pack_without_directories_serves_nobody():
    f.ald_on()
    f.pack("WE-AAAAA", total=5)
    f.pack("EMP-AAAAA", product_type="EMP", total=5)
    f.register_all()
    f.devices(2)
    run_cycle()
    assert licensed_from("EMP") == {}
    assert licensed_from("WE") == {"WE-AAAAA": 2}


@pytest.mark.parametrize(
    "version, gets_addon",
    [
        ("10.06.190.01", False),
        ("11.01.100.01", False),
        ("11.01.110.01", True),
        ("11.08.440.01", True),
        ("12.2.0", True),
    ],
)
def test_add_on_licenses_only_for_igel_os_11_01_110_or_later(version, gets_addon):
    f.ald_on()
    callcenter = f.directory("Call Center")
    f.pack("ADR-AAAAA", product_type="ADDON", total=5)
    f.register_all(conditions={"ADR-AAAAA": [callcenter]})
    fw = f.firmware(version, product="IGEL OS 12" if version.startswith("12") else "IGEL OS 11")
    dev = f.device(fw=fw, directory=callcenter)
    run_cycle()
    has = DeviceLicense.objects.filter(device=dev, service="ADDON_ADR").exists()
    assert has is gets_addon
    if not gets_addon:
        assert LicenseWait.objects.get(device=dev, service="ADDON_ADR").reason == WaitingReason.OS_TOO_OLD
        assert ProductPack.objects.get(pack_id="ADR-AAAAA").used == 0


def test_one_license_per_service_per_device_and_reruns_change_nothing():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    f.devices(4)
    run_cycle()
    events = DeploymentEvent.objects.count()
    second = run_cycle().as_dict()
    assert second["devices_licensed"] == 0
    assert DeviceLicense.objects.count() == 4
    assert sorted(Counter(DeviceLicense.objects.values_list("device_id", flat=True)).values()) == [1, 1, 1, 1]
    assert LicenseSlot.objects.count() == 4
    assert sum(ProductPack.objects.values_list("used", flat=True)) == 4
    assert DeploymentEvent.objects.count() == events


def test_waiting_is_logged_once_per_state_change_not_per_sweep():
    f.ald_on()
    f.pack("WE-AAAAA", total=1)
    f.register_all()
    f.devices(2)
    run_cycle()
    run_cycle()
    run_cycle()
    assert DeploymentEvent.objects.filter(action="wait").count() == 1
    wait = LicenseWait.objects.get()
    assert wait.last_tried_at == clock.now()


def test_demo_pack_provides_the_workspace_edition_service_with_the_demo_flag():
    f.ald_on()
    lab = f.directory("Lab")
    f.pack("DEMO-AAAAA", product_type="DEMO", total=2)
    f.register_all(conditions={"DEMO-AAAAA": [lab]})
    dev = f.device(directory=lab, fw=f.firmware("12.5.2", product="IGEL OS 12", fw_type="OS12"))
    run_cycle()
    lic = DeviceLicense.objects.get(device=dev)
    assert (lic.service, lic.pack_id, lic.is_demo) == ("WE", "DEMO-AAAAA", True)


def test_dry_run_reports_the_plan_and_changes_nothing():
    f.ald_on()
    f.pack("WE-AAAAA", total=3)
    f.register_all()
    f.devices(5)
    events = DeploymentEvent.objects.count()
    report = run_cycle(dry_run=True).as_dict()
    assert (report["devices_licensed"], report["devices_waiting"]) == (3, 2)
    assert report["licensed_by_pack"] == {"WE-AAAAA": 3}
    assert not DeviceLicense.objects.exists() and not LicenseWait.objects.exists()
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0
    assert DeploymentEvent.objects.count() == events


def test_a_waiting_device_is_licensed_when_a_pack_gains_free_licenses():
    f.ald_on()
    f.pack("WE-AAAAA", total=1)
    f.register_all()
    f.devices(2)
    run_cycle()
    assert LicenseWait.objects.count() == 1
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(total_licenses=2)
    from devices.services import refresh_registered_packs

    refresh_registered_packs()
    run_cycle()
    assert not LicenseWait.objects.exists()
    assert licensed_from() == {"WE-AAAAA": 2}


def test_expired_license_is_replaced_and_kept_as_history():
    f.ald_on()
    f.pack("WE-SHORT", total=5, expiry=datetime.date(2026, 12, 10))
    f.pack("WE-LONGR", total=5, expiry=datetime.date(2027, 12, 10))
    f.register_all()
    RegisteredPack.objects.filter(pack_id="WE-LONGR").update(active=False)
    dev = f.device()
    run_cycle()
    assert licensed_from() == {"WE-SHORT": 1}
    clock.freeze(clock.now() + datetime.timedelta(days=8))  # 2026-12-11: WE-SHORT is over
    RegisteredPack.objects.filter(pack_id="WE-LONGR").update(active=True)
    run_cycle()
    statuses = dict(DeviceLicense.objects.filter(device=dev).values_list("pack_id", "status"))
    assert statuses == {"WE-SHORT": "SUPERSEDED", "WE-LONGR": "CURRENT"}


def test_a_device_that_no_longer_needs_a_license_stops_waiting_with_an_executed_action():
    f.ald_on()
    f.pack("WE-AAAAA", total=1)
    f.register_all()
    first, binned = f.devices(2)
    run_cycle()
    assert list(LicenseWait.objects.values_list("device_id", flat=True)) == [binned.pk]
    binned.moved_to_bin = True
    binned.save()
    run_cycle()
    assert not LicenseWait.objects.exists()
    event = DeploymentEvent.objects.get(action="wait_ended")
    assert (event.device_id, event.service) == (binned.pk, "WE")
    run_cycle()
    assert DeploymentEvent.objects.filter(action="wait_ended").count() == 1


def test_waits_for_a_service_no_pack_offers_any_more_end():
    f.ald_on()
    bremen = f.directory("Bremen")
    f.pack("WE-AAAAA", total=5)
    f.pack("EMP-AAAAA", product_type="EMP", total=1)
    f.register_all(conditions={"EMP-AAAAA": [bremen]})
    f.device(directory=bremen)
    f.device(directory=bremen)
    run_cycle()
    assert waits() == {("EMP", WaitingReason.NO_FREE_LICENSE): 1}
    RegisteredPack.objects.filter(pack_id="EMP-AAAAA").delete()  # unregistered from the UMS
    run_cycle()
    assert waits() == {}


def test_switching_exchange_off_ends_the_exchange_waits():
    f.ald_on(exchange_enabled=True, exchange_days=30)
    f.pack("WE-AAAAA", total=5, expiry=datetime.date(2026, 12, 20))
    f.register_all()
    dev = f.device()
    run_cycle()  # licensed
    run_cycle()  # inside the 30-day window, with no later pack to exchange to
    assert LicenseWait.objects.get(device=dev).reason == WaitingReason.NO_LATER_PACK
    f.ald_on(exchange_enabled=False)
    run_cycle()
    assert not LicenseWait.objects.exists()
    assert DeviceLicense.objects.get(device=dev).pack_id == "WE-AAAAA"


def test_a_sweep_sees_licenses_bought_since_the_last_refresh():
    f.ald_on()
    f.pack("WE-AAAAA", total=1)
    f.register_all()
    f.devices(3)
    run_cycle()
    assert LicenseWait.objects.count() == 2
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(total_licenses=3)  # bought 2 more, no refresh
    run_cycle()
    assert not LicenseWait.objects.exists()
    assert RegisteredPack.objects.get(pack_id="WE-AAAAA").total == 3


def test_devices_in_a_directory_in_the_recycle_bin_are_never_licensed():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.register_all()
    site = f.directory("Old site")
    sub = f.directory("Old department", parent=site)
    inside = f.device(directory=sub)
    kept = f.device()
    site.moved_to_bin = True
    site.save()
    run_cycle()
    assert set(DeviceLicense.objects.values_list("device_id", flat=True)) == {kept.pk}
    assert not LicenseWait.objects.filter(device=inside).exists()
