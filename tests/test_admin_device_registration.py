"""Registering a device in the Django admin: MAC and unit ID in any common form, garbage refused by
field, and the new device handed to ALD once the transaction commits."""

import re

import pytest

from devices.models import DeploymentEvent, Device
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    django_user_model.objects.create_superuser("admin", "a@example.com", "pw-admin-1")
    client.login(username="admin", password="pw-admin-1")
    return client


def post_device(client, **values):
    fw = f.firmware()
    data = {
        "name": "NEW-0001",
        "firmware": fw.pk,
        "registration_date_0": "2026-12-03",
        "registration_date_1": "12:00:00",
        "details": "{}",
        **values,
    }
    return client.post("/admin/devices/device/add/", data)


@pytest.mark.parametrize(
    "unit, mac",
    [
        ("00:e0:c5:aa:bb:02", "00-e0-c5-aa-bb-02"),
        ("00e0c5aabb02", "00E0.C5AA.BB02"),
    ],
)
def test_common_forms_are_normalized(admin_client, unit, mac, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_device(admin_client, unit_id=unit, mac=mac)
    assert response.status_code == 302, response.content.decode()[:2000]
    device = Device.objects.get()
    assert (device.unit_id, device.mac) == ("00E0C5AABB02", "00E0C5AABB02")
    assert len(callbacks) == 1  # ALD for the new device, queued on commit
    # the registration is in the device's executed actions, with who made it
    event = DeploymentEvent.objects.get(device=device)
    assert (event.action, event.actor) == ("device_created", "admin")
    assert event.message == "Device NEW-0001 (00E0C5AABB02) created in the Django admin in the root directory"


@pytest.mark.parametrize(
    "field, value", [("mac", "hello world!"), ("unit_id", "00E0C5AABB0Z"), ("mac", "00E0C5")]
)
def test_garbage_is_refused_by_field_and_nothing_is_saved(admin_client, field, value):
    values = {"unit_id": "00E0C5AABB02", "mac": "00E0C5AABB02", field: value}
    response = post_device(admin_client, **values)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert repr(value) in errors[field][0] or value in errors[field][0]
    assert not Device.objects.exists()


def test_the_directory_drop_downs_name_directories_by_their_path(admin_client, django_assert_max_num_queries):
    """Two "Sales" under different parents are told apart ("Berlin / Sales", "Portland / Sales")."""
    berlin, portland = f.directory("Berlin"), f.directory("Portland")
    sales_berlin, sales_portland = f.directory("Sales", parent=berlin), f.directory("Sales", parent=portland)
    html = admin_client.get("/admin/devices/device/add/").content.decode()
    assert f'<option value="{sales_berlin.pk}">Berlin / Sales</option>' in html
    assert f'<option value="{sales_portland.pk}">Portland / Sales</option>' in html
    listed = re.findall(
        r'<option value="\d+">([^<]+)</option>', html.split('name="directory"')[1].split("</select>")[0]
    )
    assert listed == ["Berlin", "Berlin / Sales", "Portland", "Portland / Sales"]  # in path order
    moved = admin_client.get(f"/admin/devices/directory/{sales_berlin.pk}/change/").content.decode()
    assert f'<option value="{portland.pk}">Portland</option>' in moved
    assert f'<option value="{sales_portland.pk}">Portland / Sales</option>' in moved
    for n in range(20):
        f.directory(f"Floor {n}", parent=sales_berlin)
    with django_assert_max_num_queries(12):  # the labels come from one query, not one per directory
        admin_client.get("/admin/devices/device/add/")
