"""License manually..., remove a license, delete a device with its licenses, clear an exclusion."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from devices.device_licenses import (
    clear_exclusion,
    delete_device,
    license_directory_manually,
    license_manually,
    remove_license,
)
from devices.engine import run_cycle
from devices.models import (
    DeploymentEvent,
    Device,
    DeviceLicense,
    DistributionMethod,
    LicenseWait,
    RegisteredPack,
)
from licensing.models import LicenseSlot, ProductPack
from tests import factories as f

pytestmark = pytest.mark.django_db


def used(pack_id):
    return ProductPack.objects.get(pack_id=pack_id).used


def test_license_manually_from_a_disabled_pack_counts_right_and_skips_what_it_must():
    f.pack("EMP-MANUA", product_type="EMP", total=3)
    f.register_all(method={"EMP-MANUA": DistributionMethod.DISABLED})
    devs = f.devices(5)
    binned = f.device(moved_to_bin=True)
    result = license_manually([d.pk for d in devs] + [binned.pk], "EMP-MANUA", actor="alice")
    assert (result.licensed, result.already_licensed, result.in_recycle_bin) == (3, 0, 1)
    assert dict(result.failed) == {"no_free_license": 2}
    assert used("EMP-MANUA") == 3 == LicenseSlot.objects.count()
    assert set(DeviceLicense.objects.values_list("source", flat=True)) == {"MANUAL"}
    assert DeploymentEvent.objects.filter(actor="alice", action="deploy").count() == 3
    assert DeploymentEvent.objects.filter(actor="alice", outcome="failed").count() == 2
    assert not LicenseWait.objects.exists()  # a manual attempt reports to the administrator instead
    assert result.summary() == (
        "3 device(s) licensed from EMP-MANUA; 1 in the recycle bin, skipped; "
        "2 not licensed: No free license in any eligible pack."
    )


def test_license_manually_never_gives_a_second_license_of_a_service():
    f.ald_on()
    f.pack("WE-AUTOX", total=5)
    f.pack("WE-MANUA", total=5)
    f.register_all()
    devs = f.devices(2)
    run_cycle()
    result = license_manually([d.pk for d in devs], "WE-MANUA", actor="alice")
    assert (result.licensed, result.already_licensed) == (0, 2)
    assert used("WE-MANUA") == 0
    assert DeviceLicense.objects.filter(status="CURRENT").count() == 2


def test_license_manually_a_directory_and_its_subdirectories():
    bremen = f.directory("Bremen")
    it = f.directory("IT", parent=bremen)
    f.pack("EMP-DIRXX", product_type="EMP", total=10)
    f.register_all()
    inside = [f.device(directory=bremen), f.device(directory=it)]
    f.device(directory=f.directory("Berlin"))
    result = license_directory_manually(bremen.pk, "EMP-DIRXX", actor="bob")
    assert result.licensed == 2
    assert set(DeviceLicense.objects.values_list("device_id", flat=True)) == {d.pk for d in inside}


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda: None, "not registered"),
        (lambda: RegisteredPack.objects.filter(pack_id="WE-XXXXX").update(active=False), "deactivated"),
        (lambda: RegisteredPack.objects.filter(pack_id="WE-XXXXX").update(ils_usable=False), "not in force"),
    ],
)
def test_license_manually_refuses_a_pack_it_may_not_use_and_changes_nothing(setup, message):
    f.pack("WE-XXXXX", total=5)
    f.register_all()
    setup()
    dev = f.device()
    pack_id = "WE-NOPE1" if message == "not registered" else "WE-XXXXX"
    with pytest.raises(ValidationError) as err:
        license_manually([dev.pk], pack_id, actor="alice")
    assert message in str(err.value) and pack_id in str(err.value)
    assert not DeviceLicense.objects.exists() and used("WE-XXXXX") == 0


def test_removed_license_frees_the_slot_and_the_next_sweep_does_not_relicense_until_cleared():
    f.ald_on()
    f.pack("WE-REMOV", total=5)
    f.register_all()
    dev = f.device()
    run_cycle()
    lic = DeviceLicense.objects.get(device=dev)
    remove_license(lic.pk, actor="alice")
    lic.refresh_from_db()
    dev.refresh_from_db()
    assert lic.status == "REVOKED" and lic.revoked_at is not None
    assert used("WE-REMOV") == 0
    assert RegisteredPack.objects.get(pack_id="WE-REMOV").used == 0
    assert dev.ald_excluded is True
    assert dev.ald_excluded_reason == "WE license from WE-REMOV removed by alice on 2026-12-03"
    run_cycle()
    assert not DeviceLicense.objects.filter(device=dev, status="CURRENT").exists()
    assert not LicenseWait.objects.filter(device=dev).exists()
    clear_exclusion(dev.pk, actor="alice")
    run_cycle()
    assert DeviceLicense.objects.get(device=dev, status="CURRENT").pack_id == "WE-REMOV"
    assert list(
        DeploymentEvent.objects.filter(device=dev).order_by("id").values_list("action", flat=True)
    ) == ["deploy", "remove", "exclude", "deploy"]


def test_removing_an_exchanged_license_falls_back_to_the_older_valid_one():
    dev = f.exchanged_device()
    newer = DeviceLicense.objects.get(device=dev, status="CURRENT")
    assert newer.pack_id == "WE-LATER"
    remove_license(newer.pk, actor="alice")
    assert DeviceLicense.objects.get(device=dev, status="CURRENT").pack_id == "WE-SOONX"


def test_delete_device_with_licenses_frees_its_slots_and_without_keeps_them():
    f.ald_on()
    f.pack("WE-DELET", total=5)
    f.register_all()
    a, b = f.devices(2)
    run_cycle()
    assert delete_device(a.pk, actor="alice", delete_licenses=True) == 1
    assert used("WE-DELET") == 1
    assert delete_device(b.pk, actor="alice", delete_licenses=False) == 0
    assert used("WE-DELET") == 1  # kept: reconciliation reports the slot without a device
    assert not Device.objects.exists()
    messages = list(
        DeploymentEvent.objects.filter(action="delete_device")
        .order_by("id")
        .values_list("message", flat=True)
    )
    assert messages[0].endswith("deleted with its licenses (WE-DELET; 1 slot(s) freed)")
    assert messages[1].endswith("deleted; its licenses were kept")


@pytest.mark.parametrize(
    "expires, os_major, state",
    [
        (None, 12, "licensed"),
        (datetime.date(2026, 12, 11), 12, "licensed"),  # 8 days left, warning from 7
        (datetime.date(2026, 12, 10), 12, "expiring"),
        (datetime.date(2026, 12, 3), 12, "expiring"),  # the last valid day
        (datetime.date(2026, 12, 2), 12, "grace"),
        (datetime.date(2026, 11, 5), 12, "grace"),  # 28 days after expiry: still in grace
        (datetime.date(2026, 11, 4), 12, "expired"),
        (datetime.date(2026, 12, 2), 11, "expired"),  # no grace period for IGEL OS 11
    ],
)
def test_expiry_state_boundaries(expires, os_major, state):
    lic = DeviceLicense(expires_at=expires)
    assert lic.expiry_state(datetime.date(2026, 12, 3), os_major, warn_days=7) == state


def test_license_manually_offers_the_likeliest_pack_first_and_says_which_are_not_in_force(ums_admin_client):
    """The drop-down's first (default) choice is a Workspace Edition pack in force with free
    licenses and the latest expiry; a used-up pack follows, then an add-on, and an expired pack comes
    last, saying so, instead of being offered as "25 free"."""
    today = datetime.date(2026, 12, 3)
    f.pack("ADR-AAAAA", product_type="ADDON", total=5)
    f.pack("WE-SOON1", total=5, expiry=today + datetime.timedelta(days=3))
    f.pack("WE-LATE1", total=5, expiry=today + datetime.timedelta(days=700))
    f.pack("WE-FULL1", total=1)
    f.pack("WE-GONE1", total=25, expiry=today - datetime.timedelta(days=2), status="EXPIRED")
    f.register_all()
    RegisteredPack.objects.filter(pack_id="WE-FULL1").update(used=1)
    choices = list(ums_admin_client.get("/ums/devices/").context["license_form"].fields["pack_id"].choices)
    assert choices == [
        ("WE-LATE1", "WE-LATE1 · IGEL WE · 5 free, expires 2028-11-02"),
        ("WE-SOON1", "WE-SOON1 · IGEL WE · 5 free, expires 2026-12-06"),
        ("ADR-AAAAA", "ADR-AAAAA · IGEL ADDON · 5 free, expires 2027-12-03"),
        ("WE-FULL1", "WE-FULL1 · IGEL WE · 0 free, expires 2027-12-03"),
        ("WE-GONE1", "WE-GONE1 · IGEL WE · not in force (expired, expires 2026-12-01)"),
    ]


def test_two_removals_of_one_license_at_once_remove_it_once(monkeypatch):
    """The second removal reaches the licensing service while the first is still under way; it finds
    the slot free and, once the first has finished, the license revoked: it says so and writes no
    second executed action."""
    from devices import device_licenses

    f.ald_on()
    f.pack("WE-TWICE", total=5)
    f.register_all()
    dev = f.device()
    run_cycle()
    lic = DeviceLicense.objects.get(device=dev)
    real_release = device_licenses._release
    calls = []

    def release_while_the_other_finishes(pack_id, unit_id):
        calls.append(unit_id)
        if len(calls) == 1:  # the other administrator's removal runs through in the meantime
            remove_license(lic.pk, actor="bob")
        return real_release(pack_id, unit_id)

    monkeypatch.setattr(device_licenses, "_release", release_while_the_other_finishes)
    with pytest.raises(ValidationError) as refused:
        remove_license(lic.pk, actor="alice")
    assert refused.value.message_dict == {
        "license_id": [f"license_id {lic.pk}: removed meanwhile by someone else."]
    }
    assert used("WE-TWICE") == 0
    assert RegisteredPack.objects.get(pack_id="WE-TWICE").used == 0
    removals = DeploymentEvent.objects.filter(action="remove")
    assert list(removals.values_list("actor", flat=True)) == ["bob"]
