"""The device page and the by-hand actions on the device list and Licenses > Deployment."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.engine import run_cycle
from devices.models import DeploymentEvent, Device, DeviceLicense, DistributionMethod, ReconciliationReport
from licensing.models import LicenseSlot, ProductPack
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client, django_user_model):
    django_user_model.objects.create_user("reader", password="pw-reader-1")
    client.login(username="reader", password="pw-reader-1")
    return client


@pytest.fixture
def ums_admin(client, django_user_model):
    user = django_user_model.objects.create_user("umsadmin", password="pw-admin-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_device"),
        Permission.objects.get(codename="change_deploymentsettings"),
    )
    client.login(username="umsadmin", password="pw-admin-1")
    return client


@pytest.fixture
def licensed_device():
    f.ald_on()
    f.pack("WE-AAAAA", total=5, expiry=datetime.date(2026, 12, 1) + datetime.timedelta(days=400))
    f.pack("EMP-MANUA", product_type="EMP", total=2)
    f.register_all(method={"EMP-MANUA": DistributionMethod.DISABLED})
    dev = f.device(name="ITC-PAGE-1", fw=f.firmware("12.5.2", product="IGEL OS 12", fw_type="OS12"))
    run_cycle()
    return dev


def test_anonymous_is_sent_to_login(client, licensed_device):
    response = client.get(f"/ums/devices/{licensed_device.pk}/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_reader_sees_license_information_and_cannot_change_anything(reader, licensed_device):
    html = reader.get(f"/ums/devices/{licensed_device.pk}/").content.decode()
    assert "ITC-PAGE-1" in html and "WE-AAAAA" in html and "2028-01-05" in html
    assert "License manually" not in html and "Delete device" not in html
    lic = DeviceLicense.objects.get()
    response = reader.post(
        f"/ums/devices/{licensed_device.pk}/", {"action": "remove_license", "license_id": lic.pk}
    )
    assert response.status_code == 403
    assert DeviceLicense.objects.get().status == "CURRENT"


def test_an_expired_license_in_grace_is_shown_in_red(reader, licensed_device):
    from ald_portal import clock

    DeviceLicense.objects.update(expires_at=datetime.date(2026, 11, 20))  # 13 days ago, IGEL OS 12
    clock.freeze(clock.now())
    html = reader.get(f"/ums/devices/{licensed_device.pk}/").content.decode()
    assert '<td class="expired">2026-11-20</td>' in html
    assert "badge-state-grace" in html


def test_administrator_licenses_removes_clears_and_deletes_from_the_page(ums_admin, licensed_device):
    url = f"/ums/devices/{licensed_device.pk}/"
    response = ums_admin.post(url, {"action": "license_manually", "pack_id": "EMP-MANUA"}, follow=True)
    assert "1 device(s) licensed from EMP-MANUA." in response.content.decode()
    assert DeviceLicense.objects.get(service="EMP").source == "MANUAL"

    we = DeviceLicense.objects.get(service="WE")
    html = ums_admin.post(
        url, {"action": "remove_license", "license_id": we.pk}, follow=True
    ).content.decode()
    assert "excluded from ALD until you clear that" in html
    assert "Excluded from automatic license deployment" in html
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0

    ums_admin.post(url, {"action": "clear_exclusion"})
    assert Device.objects.get(pk=licensed_device.pk).ald_excluded is False

    response = ums_admin.post(url, {"action": "delete_device", "delete_licenses": "on"}, follow=True)
    assert "Device ITC-PAGE-1 deleted (1 license slot(s) freed)." in response.content.decode()
    assert not Device.objects.exists()
    assert ProductPack.objects.get(pack_id="EMP-MANUA").used == 0


def test_a_refused_action_is_a_message_naming_the_value_not_a_500(ums_admin, licensed_device):
    url = f"/ums/devices/{licensed_device.pk}/"
    html = ums_admin.post(
        url, {"action": "license_manually", "pack_id": "EMP-NOPE1"}, follow=True
    ).content.decode()
    assert "EMP-NOPE1" in html and "not one of the available choices" in html
    html = ums_admin.post(
        url, {"action": "remove_license", "license_id": "abc"}, follow=True
    ).content.decode()
    assert "license_id &#x27;abc&#x27; is not a license of this device." in html


def test_remove_license_takes_only_a_license_of_the_device_in_the_url(ums_admin, licensed_device):
    other = f.device(n=77, name="OTHER")
    run_cycle()
    theirs = DeviceLicense.objects.get(device=other, status="CURRENT")
    html = ums_admin.post(
        f"/ums/devices/{licensed_device.pk}/",
        {"action": "remove_license", "license_id": theirs.pk},
        follow=True,
    ).content.decode()
    assert f"license_id {theirs.pk}: no license on device {licensed_device.pk} to remove." in html
    theirs.refresh_from_db()
    assert theirs.status == "CURRENT"
    assert LicenseSlot.objects.filter(unit_id=other.unit_id, released_at__isnull=True).count() == 1


def test_a_device_id_beyond_any_database_id_is_refused_not_a_500(ums_admin, licensed_device):
    response = ums_admin.post(
        "/ums/devices/license-manually/",
        {"pack_id": "WE-AAAAA", "device": "9" * 40, "scope": "selected"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Choose at least one device." in response.content.decode()


def test_license_the_selected_devices_and_all_devices_of_a_filter(ums_admin):
    bremen = f.directory("Bremen")
    f.pack("EMP-MANUA", product_type="EMP", total=10)
    f.register_all()
    a, b = f.device(directory=bremen), f.device(directory=bremen)
    c = f.device()
    ums_admin.post(
        "/ums/devices/license-manually/", {"pack_id": "EMP-MANUA", "scope": "selected", "device": [c.pk]}
    )
    assert set(DeviceLicense.objects.values_list("device_id", flat=True)) == {c.pk}
    response = ums_admin.post(
        "/ums/devices/license-manually/",
        {"pack_id": "EMP-MANUA", "scope": "filter", "directory": str(bremen.pk)},
        follow=True,
    )
    assert "2 device(s) licensed from EMP-MANUA." in response.content.decode()
    assert set(DeviceLicense.objects.values_list("device_id", flat=True)) == {a.pk, b.pk, c.pk}


def test_deployment_buttons_refresh_run_and_reconcile(
    ums_admin, licensed_device, django_capture_on_commit_callbacks
):
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(total_licenses=9)
    html = ums_admin.post("/ums/deployment/", {"action": "refresh"}, follow=True).content.decode()
    assert "0 newly registered, 2 refreshed" in html
    with django_capture_on_commit_callbacks() as queued:
        ums_admin.post("/ums/deployment/", {"action": "run_ald"})
    assert len(queued) == 1
    html = ums_admin.post("/ums/deployment/", {"action": "reconcile"}, follow=True).content.decode()
    assert "Reconciliation: counters, slots and device licenses agree." in html
    assert ReconciliationReport.objects.count() == 1
    assert DeploymentEvent.objects.filter(action="reconcile", actor="umsadmin").exists()


def test_reader_cannot_press_the_deployment_buttons(reader, licensed_device):
    assert reader.post("/ums/deployment/", {"action": "reconcile"}).status_code == 403
    assert not ReconciliationReport.objects.exists()


def test_device_page_queries_do_not_grow_with_its_licenses(reader, licensed_device):
    url = f"/ums/devices/{licensed_device.pk}/"

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert reader.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    DeviceLicense.objects.bulk_create(
        DeviceLicense(
            device=licensed_device,
            unit_id=licensed_device.unit_id,
            service="WE",
            pack_id="WE-AAAAA",
            product_type="WE",
            status="SUPERSEDED",
        )
        for _ in range(60)
    )
    assert count() == few


def test_deactivate_and_activate_a_registered_pack_from_the_deployment_page(ums_admin, licensed_device):
    from devices.models import RegisteredPack

    html = ums_admin.get("/ums/deployment/").content.decode()
    assert 'aria-label="Deactivate WE-AAAAA"' in html
    response = ums_admin.post(
        "/ums/deployment/", {"action": "deactivate", "pack_id": "WE-AAAAA"}, follow=True
    )
    assert "Pack WE-AAAAA deactivated." in response.content.decode()
    assert RegisteredPack.objects.get(pack_id="WE-AAAAA").active is False
    new = f.device(name="ITC-PAGE-2")
    run_cycle()
    assert not DeviceLicense.objects.filter(device=new).exists()  # a deactivated pack is never used
    ums_admin.post("/ums/deployment/", {"action": "activate", "pack_id": "WE-AAAAA"})
    run_cycle()
    assert DeviceLicense.objects.get(device=new).pack_id == "WE-AAAAA"
    assert DeploymentEvent.objects.filter(action="pack_active", actor="umsadmin").count() == 2
    html = ums_admin.post("/ums/deployment/", {"action": "activate", "pack_id": "WE-NOPE1"}, follow=True)
    assert "Pack &#x27;WE-NOPE1&#x27; is not registered in this UMS." in html.content.decode()


def test_reader_sees_no_pack_buttons_and_cannot_deactivate(reader, licensed_device):
    from devices.models import RegisteredPack

    assert "Deactivate WE-AAAAA" not in reader.get("/ums/deployment/").content.decode()
    assert reader.post("/ums/deployment/", {"action": "deactivate", "pack_id": "WE-AAAAA"}).status_code == 403
    assert RegisteredPack.objects.get(pack_id="WE-AAAAA").active is True
