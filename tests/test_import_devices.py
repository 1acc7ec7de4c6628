"""``manage.py import_devices``: the IMI v3 inventory files (firmwares, tcdirectories, thin clients
with details) of a folder or one file. A file with any bad record is rejected whole, every bad record
is listed (index, field, value) and nothing of the folder is written.

Numbers come from demo_data: 240 thin clients (30 UD Pockets with an 18-digit unit ID, 9 in the
recycle bin, 5 in the root directory), 12 directories (4 sites at the root), 8 firmwares."""

import datetime
import io
import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from devices.models import Device, Directory, Firmware
from tests import factories

pytestmark = pytest.mark.django_db

DEMO = Path(settings.BASE_DIR) / "demo_data"
FILES = {
    "firmwares": "imi-firmwares.json",
    "directories": "imi-tcdirectories.json",
    "devices": "imi-thinclients-details.json",
}
TC = FILES["devices"]
DEMO_SUMMARY = (
    "Imported devices: 240 new, 0 updated, 0 unchanged; directories: 12 new, 0 updated, 0 unchanged; "
    "firmwares: 8 new, 0 updated, 0 unchanged"
)
UNCHANGED_SUMMARY = (
    "Imported devices: 0 new, 0 updated, 240 unchanged; directories: 0 new, 0 updated, 12 unchanged; "
    "firmwares: 0 new, 0 updated, 8 unchanged"
)
DELETE = object()


# --- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def imi(tmp_path):
    """A copy of the demo IMI folder that a test may edit."""
    folder = tmp_path / "imi"
    folder.mkdir()
    for name in FILES.values():
        shutil.copy(DEMO / name, folder / name)
    return folder


def load(folder, kind):
    return json.loads((folder / FILES[kind]).read_text(encoding="utf-8"))


def save(folder, kind, data):
    (folder / FILES[kind]).write_text(json.dumps(data, indent=1), encoding="utf-8")


def edit(folder, kind, index, **changes):
    data = load(folder, kind)
    records = data["FwResource"] if kind == "firmwares" else data
    for key, value in changes.items():
        if value is DELETE:
            del records[index][key]
        else:
            records[index][key] = value
    save(folder, kind, data)


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_devices", *map(str, args), stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def rejected(*args):
    """Run an import that must fail; returns (CommandError message, stderr lines)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_devices", *map(str, args), stdout=out, stderr=err)
    assert out.getvalue() == ""
    return str(exc.value), err.getvalue().splitlines()


def snapshot():
    return {
        "firmwares": list(Firmware.objects.order_by("id").values()),
        "directories": list(Directory.objects.order_by("id").values()),
        "devices": list(Device.objects.order_by("id").values()),
    }


EMPTY = {"firmwares": [], "directories": [], "devices": []}


def berlin(*args):
    return timezone.make_aware(datetime.datetime(*args), timezone.get_default_timezone())


# --- the demo folder ----------------------------------------------------------------------------
def test_demo_folder_imports_exactly_what_the_files_hold():
    out, err = run(DEMO)

    assert out == DEMO_SUMMARY
    assert err == ""
    assert (Device.objects.count(), Directory.objects.count(), Firmware.objects.count()) == (240, 12, 8)
    assert sorted(Device.objects.values_list("id", flat=True)) == list(range(1000, 1240))
    assert Device.objects.filter(moved_to_bin=True).count() == 9
    assert sorted(Device.objects.filter(directory=None).values_list("id", flat=True)) == [
        1044,
        1079,
        1081,
        1105,
        1209,
    ]
    assert Device.objects.filter(unit_id__regex=r"^[0-9A-F]{18}$").count() == 30
    assert sorted(Directory.objects.filter(parent=None).values_list("name", flat=True)) == [
        "Berlin",
        "Bremen",
        "Leeds",
        "Portland",
    ]


def test_device_1000_has_the_values_of_its_record():
    run(DEMO)

    d = Device.objects.select_related("directory__parent", "firmware").get(id=1000)
    assert (d.unit_id, d.mac, d.name) == ("00E0C5C123B1", "00E0C5C123B1", "ITC00E0C5C123B1")
    assert (d.directory.id, d.directory.name, d.directory.parent.name) == (105, "Logistics", "Bremen")
    assert (d.firmware.id, d.firmware.product, d.firmware.version) == (11, "IGEL OS 11", "11.08.440.01")
    # "12.08.2026 18:38:00" is DD.MM.YYYY in the portal's time zone
    assert d.registration_date == berlin(2026, 8, 12, 18, 38, 0)
    assert timezone.localtime(d.registration_date).strftime("%Y-%m-%d %H:%M:%S") == "2026-08-12 18:38:00"
    assert d.last_boot == berlin(2026, 11, 21, 18, 38)
    assert d.last_contact == berlin(2026, 11, 21, 18, 38)
    assert d.moved_to_bin is False
    assert (d.last_ip, d.site, d.department, d.cost_center) == (
        "10.17.23.143",
        "Bremen",
        "Logistics",
        "CC-2028",
    )
    assert (d.asset_id, d.inservice_date, d.product_id) == ("AS-00000", "12.08.2026", "UD3-LX 60")
    assert (d.device_type, d.device_serial_number) == ("IGEL M350C", "37E3S3E28JT97KB")
    assert d.os_type == "IGEL Linux 11 (Kernel Version 5.15.80)"
    # the other detail fields are kept verbatim; the modelled ones are not duplicated there
    assert d.details["cpuType"] == "AMD Ryzen Embedded R1505G"
    assert (d.details["memorySize"], d.details["batteryLevel"]) == (7892, -1)
    assert d.details["isThinClientRegistered"] == "true"
    for modelled in ("id", "unitID", "mac", "name", "parentID", "lastIP", "registrationDate", "links"):
        assert modelled not in d.details


def test_a_device_in_the_recycle_bin_and_one_at_the_root():
    run(DEMO)

    binned = Device.objects.get(id=1024)
    assert (binned.moved_to_bin, binned.directory_id) == (True, 111)
    root = Device.objects.get(id=1044)
    assert (root.moved_to_bin, root.directory_id) == (False, None)


def test_ud_pocket_keeps_its_18_digit_unit_id_that_differs_from_its_mac():
    run(DEMO)

    pocket = Device.objects.get(id=1002)
    assert pocket.unit_id == "85641000CB0EB53F16"
    assert pocket.mac == "3C52A1F219E9"
    assert pocket.device_type == "UD Pocket"
    assert Device.objects.get(unit_id="856410000BC182B5F7").mac == "3C52A193EF4C"


def test_directories_and_firmwares_have_the_values_of_their_records():
    run(DEMO)

    assert Directory.objects.get(id=111).name == "Call Center"
    assert Directory.objects.get(id=111).parent_id == 110
    assert list(Directory.objects.filter(parent_id=100).order_by("id").values_list("name", flat=True)) == [
        "Finance",
        "Sales",
        "Support",
    ]
    fw = Firmware.objects.get(id=22)
    assert (fw.product, fw.version, fw.firmware_type) == ("IGEL OS 12", "12.5.2", "OS12")
    assert fw.version_key == "00012.00005.00002.00000"
    assert list(Firmware.objects.values_list("version", flat=True)) == [
        "10.06.190.01",
        "11.01.100.01",
        "11.01.110.01",
        "11.05.133.01",
        "11.08.440.01",
        "11.09.310.01",
        "12.2.0",
        "12.5.2",
    ]


def test_objects_made_after_an_import_get_ids_past_the_imported_ones():
    run(DEMO)  # explicit IMI ids; on PostgreSQL the import moves the id sequences past them

    assert Firmware.objects.create(product="IGEL OS 12", version="12.6.0", firmware_type="OS12").id == 23
    assert factories.directory("Munich").id == 112
    assert factories.device(fw=Firmware.objects.get(id=22)).id == 1240


def test_importing_the_same_files_twice_changes_nothing():
    run(DEMO)
    before = snapshot()

    out, _ = run(DEMO)

    assert out == UNCHANGED_SUMMARY
    assert snapshot() == before


def test_a_changed_record_is_updated_and_only_it(imi):
    run(imi)
    edit(imi, "devices", 0, name="BRE-LOG-0000", parentID="106", firmwareID="22", movedToBin=True)
    edit(imi, "firmwares", 0, product="IGEL UD LX 10")
    edit(imi, "directories", 11, name="Contact Center")
    other_before = list(Device.objects.exclude(id=1000).order_by("id").values())

    out, _ = run(imi)

    assert out == (
        "Imported devices: 0 new, 1 updated, 239 unchanged; directories: 0 new, 1 updated, 11 unchanged; "
        "firmwares: 0 new, 1 updated, 7 unchanged"
    )
    d = Device.objects.get(id=1000)
    assert (d.name, d.directory_id, d.firmware_id, d.moved_to_bin) == ("BRE-LOG-0000", 106, 22, True)
    assert Firmware.objects.get(id=2).product == "IGEL UD LX 10"
    assert Directory.objects.get(id=111).name == "Contact Center"
    assert list(Device.objects.exclude(id=1000).order_by("id").values()) == other_before


def test_new_devices_are_handed_to_ald_once_committed(monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("devices.tasks.async_task", lambda name, *args, **kw: queued.append((name, args)))

    with django_capture_on_commit_callbacks(execute=True):
        run(DEMO)
    assert queued == [("devices.tasks.license_devices", (list(range(1000, 1240)),))]

    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run(DEMO)  # nothing new
    assert queued == []


def test_only_the_new_devices_are_handed_to_ald(imi, monkeypatch, django_capture_on_commit_callbacks):
    run(imi)
    data = load(imi, "devices")
    data.append(dict(data[0], id="2000", unitID="00e0c5aa0001", mac="00:e0:c5:aa:00:01", name="NEW-1"))
    save(imi, "devices", data)
    queued = []
    monkeypatch.setattr("devices.tasks.async_task", lambda name, *args, **kw: queued.append((name, args)))

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run(imi)

    assert out.startswith("Imported devices: 1 new, 0 updated, 240 unchanged;")
    assert queued == [("devices.tasks.license_devices", ([2000],))]
    new = Device.objects.get(id=2000)
    assert (new.unit_id, new.mac, new.name) == ("00E0C5AA0001", "00E0C5AA0001", "NEW-1")


# --- one file at a time -------------------------------------------------------------------------
def test_path_may_be_a_single_file_of_each_kind():
    out, _ = run(DEMO / FILES["firmwares"])
    assert out == "Imported firmwares: 8 new, 0 updated, 0 unchanged"
    assert (Firmware.objects.count(), Directory.objects.count(), Device.objects.count()) == (8, 0, 0)

    out, _ = run(DEMO / FILES["directories"])
    assert out == "Imported directories: 12 new, 0 updated, 0 unchanged"
    assert (Firmware.objects.count(), Directory.objects.count(), Device.objects.count()) == (8, 12, 0)

    out, _ = run(DEMO / TC)
    assert out == "Imported devices: 240 new, 0 updated, 0 unchanged"
    assert Device.objects.count() == 240
    assert Device.objects.get(id=1000).directory_id == 105


def test_thin_clients_alone_need_their_firmwares_and_directories_in_the_database():
    message, lines = rejected(DEMO / TC)

    # every device names an unknown firmware; the 235 outside the root also an unknown directory
    assert message == f"{DEMO / TC}: 475 bad record(s); nothing was imported"
    assert len(lines) == 475
    assert lines[:2] == [
        f"{TC}[0] firmwareID='11': unknown firmware",
        f"{TC}[0] parentID='105': unknown directory (use \"-1\" for the root)",
    ]
    assert f"{TC}[44] firmwareID='22': unknown firmware" in lines
    assert not any(line.startswith(f"{TC}[44] parentID") for line in lines)  # 1044 sits at the root
    assert snapshot() == EMPTY


# --- normalization ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mac, unit",
    [
        ("00:e0:c5:c1:23:b1", "00-E0-C5-C1-23-B1"),
        ("00-e0-c5-c1-23-b1", "00:E0:C5:C1:23:B1"),
        ("00e0c5c123b1", "00e0c5c123b1"),
        ("00E0.C5C1.23B1", " 00E0C5C123B1 "),
    ],
)
def test_mac_and_unit_id_forms_are_normalized(imi, mac, unit):
    edit(imi, "devices", 0, mac=mac, unitID=unit)
    edit(imi, "devices", 2, unitID="85:64:10:00:cb:0e:b5:3f:16", mac="3c-52-a1-f2-19-e9")

    run(imi)

    assert Device.objects.filter(id=1000).values_list("unit_id", "mac").get() == ("00E0C5C123B1",) * 2
    assert Device.objects.filter(id=1002).values_list("unit_id", "mac").get() == (
        "85641000CB0EB53F16",
        "3C52A1F219E9",
    )
    # the same devices written in the plain form are the same devices: nothing changes
    out, _ = run(DEMO)
    assert out == UNCHANGED_SUMMARY


# --- bad records: the whole folder is rejected ---------------------------------------------------
NOT_A_MAC = "not a MAC address (12 hexadecimal digits)"
NOT_A_UNIT = "not a unit ID (12 or 18 hexadecimal digits)"
NO_DIRECTORY = 'unknown directory (use "-1" for the root)'
NOT_IMI_DATE = "not a date of the form d.m.Y H:M:S"
NOT_UMS_TIME = "not a date of the form Y-m-d H:M"
BAD_DEVICE_RECORDS = {  # id: (index, changes, the error line after "imi-thinclients-details.json[index] ")
    "mac-short": (3, {"mac": "00E0C5DBA4"}, f"mac='00E0C5DBA4': {NOT_A_MAC}"),
    "mac-not-hex": (3, {"mac": "00E0C5DBA41G"}, f"mac='00E0C5DBA41G': {NOT_A_MAC}"),
    "mac-long": (3, {"mac": "00E0C5DBA41E00"}, f"mac='00E0C5DBA41E00': {NOT_A_MAC}"),
    "mac-odd-groups": (3, {"mac": "00E0C5-DB-A41E"}, f"mac='00E0C5-DB-A41E': {NOT_A_MAC}"),
    "mac-1-digit-groups": (
        3,
        {"mac": "0:0:E:0:C:5:D:B:A:4:1:E"},
        f"mac='0:0:E:0:C:5:D:B:A:4:1:E': {NOT_A_MAC}",
    ),
    "mac-mixed-separators": (3, {"mac": "00:E0:C5-DB-A4:1E"}, f"mac='00:E0:C5-DB-A4:1E': {NOT_A_MAC}"),
    "mac-number": (3, {"mac": 965095007262}, f"mac=965095007262: {NOT_A_MAC}"),
    "mac-empty": (5, {"mac": ""}, "mac='': missing"),
    "unit-14-digits": (5, {"unitID": "00505686BEBB12"}, f"unitID='00505686BEBB12': {NOT_A_UNIT}"),
    "unit-not-hex": (5, {"unitID": "ZZ505686BEBB"}, f"unitID='ZZ505686BEBB': {NOT_A_UNIT}"),
    "unit-missing": (5, {"unitID": DELETE}, "unitID=None: missing"),
    "name-missing": (9, {"name": DELETE}, "name=None: missing"),
    "id-missing": (9, {"id": DELETE}, "id=None: missing"),
    "id-not-a-number": (9, {"id": "10x9"}, "id='10x9': must be a positive number as a string"),
    "id-zero": (9, {"id": "0"}, "id='0': must be a positive number as a string"),
    "id-duplicate": (9, {"id": "1000"}, "id='1000': duplicate device id (also record 0)"),
    "firmware-unknown": (7, {"firmwareID": "99"}, "firmwareID='99': unknown firmware"),
    "firmware-missing": (7, {"firmwareID": DELETE}, "firmwareID=None: missing"),
    "directory-unknown": (8, {"parentID": "999"}, f"parentID='999': {NO_DIRECTORY}"),
    "directory-not-an-id": (8, {"parentID": "root"}, f"parentID='root': {NO_DIRECTORY}"),
    "moved-to-bin-text": (8, {"movedToBin": "false"}, "movedToBin='false': must be true or false"),
    "registration-iso": (
        10,
        {"registrationDate": "2025-05-19 23:32:00"},
        f"registrationDate='2025-05-19 23:32:00': {NOT_IMI_DATE}",
    ),
    "registration-no-such-day": (
        10,
        {"registrationDate": "31.02.2025 23:32:00"},
        f"registrationDate='31.02.2025 23:32:00': {NOT_IMI_DATE}",
    ),
    "registration-no-time": (
        10,
        {"registrationDate": "19.05.2025"},
        f"registrationDate='19.05.2025': {NOT_IMI_DATE}",
    ),
    "last-boot": (
        10,
        {"lastBoottime": "26.11.2026 23:32"},
        f"lastBoottime='26.11.2026 23:32': {NOT_UMS_TIME}",
    ),
    "last-contact-number": (10, {"lastContact": 1764197520}, f"lastContact=1764197520: {NOT_UMS_TIME}"),
    "text-field-number": (10, {"lastIP": 167772161}, "lastIP=167772161: must be text"),
    "object-type-missing": (10, {"objectType": DELETE}, 'objectType=None: must be "tc"'),
}


@pytest.mark.parametrize("index, changes, error", BAD_DEVICE_RECORDS.values(), ids=BAD_DEVICE_RECORDS.keys())
def test_a_bad_thin_client_record_rejects_the_whole_folder(imi, index, changes, error):
    edit(imi, "devices", index, **changes)

    message, lines = rejected(imi)

    assert message == f"{imi}: 1 bad record(s); nothing was imported"
    assert lines == [f"{TC}[{index}] {error}"]
    assert snapshot() == EMPTY  # not even the good firmware and directory files of the folder


def test_a_bad_record_also_rejects_a_dry_run(imi):
    edit(imi, "devices", 3, mac="00E0C5DBA4")

    message, lines = rejected(imi, "--dry-run")

    assert lines == [f"{TC}[3] mac='00E0C5DBA4': not a MAC address (12 hexadecimal digits)"]
    assert snapshot() == EMPTY


def test_a_too_long_name_is_rejected(imi):
    edit(imi, "devices", 4, name="X" * 201)

    _, lines = rejected(imi)

    assert lines == [f"{TC}[4] name='{'X' * 201}': longer than 200 characters"]
    assert snapshot() == EMPTY


def test_a_record_that_is_not_an_object_is_rejected(imi):
    data = load(imi, "devices")
    data.insert(1, "00E0C5C123B1")
    save(imi, "devices", data)

    _, lines = rejected(imi)

    assert lines == [f"{TC}[1] record='00E0C5C123B1': must be an object"]
    assert snapshot() == EMPTY


def test_a_duplicate_unit_id_in_the_file_is_rejected_whatever_its_form(imi):
    edit(imi, "devices", 10, unitID="00:e0:c5:c1:23:b1")  # record 0's unit ID, other form

    _, lines = rejected(imi)

    assert lines == [f"{TC}[10] unitID='00:e0:c5:c1:23:b1': duplicate unit ID (also record 0)"]
    assert snapshot() == EMPTY


def test_a_unit_id_already_held_by_another_device_in_the_database_is_rejected(imi):
    run(imi)
    before = snapshot()
    # device 1005 comes back as a new IMI object 5000 with the same unit ID, written in lower case
    edit(imi, "devices", 5, id="5000", unitID="00505686bebb")
    edit(imi, "devices", 0, name="RENAMED")  # a good change in the same file is not written either

    message, lines = rejected(imi)

    assert message == f"{imi}: 1 bad record(s); nothing was imported"
    assert lines == [f"{TC}[5] unitID='00505686bebb': duplicate unit ID: already registered as device 1005"]
    assert snapshot() == before


def test_a_unit_id_of_a_device_made_outside_the_import_is_rejected(imi):
    fw = factories.firmware(version="11.99.100.01")
    held = factories.device(unit_id="00E0C5DBA41E", mac="00E0C5DBA41E", fw=fw)
    before = snapshot()

    _, lines = rejected(imi)

    assert lines == [
        f"{TC}[3] unitID='00E0C5DBA41E': duplicate unit ID: already registered as device {held.id}"
    ]
    assert snapshot() == before


def test_every_bad_record_is_listed_in_file_order(imi):
    edit(imi, "devices", 3, mac="00E0C5DBA4", registrationDate="yesterday")
    edit(imi, "devices", 7, firmwareID="99")
    edit(imi, "devices", 200, parentID="4711", unitID="xyz")

    message, lines = rejected(imi)

    assert message == f"{imi}: 5 bad record(s); nothing was imported"
    assert lines == [
        f"{TC}[3] mac='00E0C5DBA4': not a MAC address (12 hexadecimal digits)",
        f"{TC}[3] registrationDate='yesterday': not a date of the form d.m.Y H:M:S",
        f"{TC}[7] firmwareID='99': unknown firmware",
        f"{TC}[200] unitID='xyz': not a unit ID (12 or 18 hexadecimal digits)",
        f"{TC}[200] parentID='4711': unknown directory (use \"-1\" for the root)",
    ]
    assert snapshot() == EMPTY


def test_a_bad_record_after_an_earlier_import_leaves_the_database_as_it_was(imi):
    run(imi)
    before = snapshot()
    edit(imi, "devices", 0, name="CHANGED")
    edit(imi, "directories", 0, name="Berlin-Mitte")
    edit(imi, "firmwares", 7, version="12.6.0")
    edit(imi, "devices", 239, mac="nope")

    _, lines = rejected(imi)

    assert lines == [f"{TC}[239] mac='nope': not a MAC address (12 hexadecimal digits)"]
    assert snapshot() == before


def test_malformed_json_rejects_the_folder(imi):
    text = (imi / TC).read_text(encoding="utf-8")
    (imi / TC).write_text(text[: len(text) // 2], encoding="utf-8")

    message, lines = rejected(imi)

    assert message == f"{imi}: 1 bad record(s); nothing was imported"
    assert len(lines) == 1
    assert lines[0].startswith(f"{TC} file='{TC}': not valid JSON: ")
    assert snapshot() == EMPTY


def test_a_file_that_is_not_utf8_rejects_the_folder(imi):
    (imi / FILES["directories"]).write_bytes(b'[{"name": "M\xfcnchen"}]')

    _, lines = rejected(imi)

    assert len(lines) == 1
    assert lines[0].startswith("imi-tcdirectories.json file='imi-tcdirectories.json': not valid JSON: ")
    assert snapshot() == EMPTY


def test_a_thin_client_list_with_a_directory_record_is_rejected_not_skipped(imi):
    data = load(imi, "devices")
    data[5]["objectType"] = "tcdirectory"
    save(imi, "devices", data)

    _, lines = rejected(imi)

    assert lines == [f"{TC}[5] objectType='tcdirectory': must be \"tc\""]
    assert snapshot() == EMPTY


# --- bad firmware and directory records -----------------------------------------------------------
def test_a_bad_firmware_rejects_the_folder_and_the_devices_on_it(imi):
    edit(imi, "firmwares", 2, version="11.01.x")  # firmware 7, which 21 devices run

    message, lines = rejected(imi)

    assert lines[0] == "imi-firmwares.json[2] version='11.01.x': not a dotted numeric version like 11.01.110"
    assert len(lines) == 1 + 21
    assert all(line.endswith("firmwareID='7': unknown firmware") for line in lines[1:])
    assert f"{TC}[7] firmwareID='7': unknown firmware" in lines
    assert message == f"{imi}: 22 bad record(s); nothing was imported"
    assert snapshot() == EMPTY


@pytest.mark.parametrize(
    "index, changes, error, devices_on_it",
    [
        (0, {"id": "two"}, "id='two': must be a positive number as a string", 7),
        (1, {"id": "2"}, "id='2': duplicate firmware id", 13),
        (3, {"product": ""}, "product='': missing or empty", 28),
        (3, {"firmwareType": DELETE}, "firmwareType=None: missing or empty", 28),
        (3, {"firmwareType": "L" * 21}, f"firmwareType='{'L' * 21}': longer than 20 characters", 28),
    ],
    ids=["id-not-a-number", "id-duplicate", "product-empty", "type-missing", "type-too-long"],
)
def test_bad_firmware_records(imi, index, changes, error, devices_on_it):
    edit(imi, "firmwares", index, **changes)

    _, lines = rejected(imi)

    # the bad record, then each device on the firmware it would have been
    assert lines[0] == f"imi-firmwares.json[{index}] {error}"
    assert len(lines) == 1 + devices_on_it
    assert all(line.startswith(TC) and line.endswith("unknown firmware") for line in lines[1:])
    assert snapshot() == EMPTY


def test_two_firmware_records_for_the_same_firmware_are_rejected(imi):
    data = load(imi, "firmwares")
    data["FwResource"].append(dict(data["FwResource"][4], id="30"))  # a second 11.08.440.01
    save(imi, "firmwares", data)

    _, lines = rejected(imi)

    assert lines == [
        "imi-firmwares.json[8] version='11.08.440.01': "
        "the same product, version and type as firmware 11 (record 4)"
    ]
    assert snapshot() == EMPTY


def test_a_firmware_already_in_the_database_under_another_id_is_rejected(imi):
    held = factories.firmware(version="11.08.440.01", product="IGEL OS 11", fw_type="LX")
    before = snapshot()

    _, lines = rejected(imi)

    assert lines == [
        "imi-firmwares.json[4] version='11.08.440.01': "
        f"the same product, version and type as firmware {held.id}, already in the database"
    ]
    assert snapshot() == before


@pytest.mark.parametrize(
    "index, changes, error, more",
    [
        (1, {"parentID": "999"}, f"parentID='999': {NO_DIRECTORY}", 0),
        (1, {"parentID": DELETE}, f"parentID=None: {NO_DIRECTORY}", 0),
        (2, {"name": "  "}, "name='  ': missing or empty", 20),
        (2, {"id": "-3"}, "id='-3': missing, or not a positive number as a string", 20),
        (3, {"id": "101"}, "id='101': duplicate directory id", 18),
        (4, {"movedToBin": 0}, "movedToBin=0: must be true or false", 2),  # its two subdirectories
        (5, {"name": "L" * 201}, f"name='{'L' * 201}': longer than 200 characters", 32),
        (6, {"objectType": "tc"}, "objectType='tc': must be \"tcdirectory\"", 33),
    ],
    ids=[
        "parent-unknown",
        "parent-missing",
        "name-blank",
        "id-negative",
        "id-duplicate",
        "moved-to-bin-number",
        "name-too-long",
        "object-type-tc",
    ],
)
def test_bad_directory_records(imi, index, changes, error, more):
    edit(imi, "directories", index, **changes)

    _, lines = rejected(imi)

    # the bad record, then each device or subdirectory in the directory it would have been
    assert lines[0] == f"imi-tcdirectories.json[{index}] {error}"
    assert len(lines) == 1 + more
    assert all(line.endswith(f"parentID='{100 + index}': {NO_DIRECTORY}") for line in lines[1:])
    assert snapshot() == EMPTY


def test_directories_forming_a_cycle_are_rejected(imi):
    edit(imi, "directories", 0, parentID="101")  # Berlin under its own Finance

    _, lines = rejected(imi)

    assert lines == [
        "imi-tcdirectories.json[0] parentID='101': directories form a cycle",
        "imi-tcdirectories.json[1] parentID='100': directories form a cycle",
    ]
    assert snapshot() == EMPTY


def test_a_cycle_through_directories_already_in_the_database_is_rejected(tmp_path):
    run(DEMO)
    before = snapshot()
    # Berlin (100) moved under Finance (101), which the database keeps under Berlin
    only_berlin = [dict(load(DEMO, "directories")[0], parentID="101")]
    path = tmp_path / "berlin.json"
    path.write_text(json.dumps(only_berlin), encoding="utf-8")

    _, lines = rejected(path)

    assert lines == ["berlin.json[0] parentID='101': directories form a cycle"]
    assert snapshot() == before


def test_a_directory_may_move_under_one_already_in_the_database(tmp_path):
    run(DEMO)
    moved = [dict(load(DEMO, "directories")[11], parentID="104")]  # Call Center under Bremen
    path = tmp_path / "callcenter.json"
    path.write_text(json.dumps(moved), encoding="utf-8")

    out, _ = run(path)

    assert out == "Imported directories: 0 new, 1 updated, 0 unchanged"
    assert Directory.objects.get(id=111).parent_id == 104


# --- paths --------------------------------------------------------------------------------------
def test_a_missing_path_is_rejected(tmp_path):
    missing = tmp_path / "nothing-here"

    message, lines = rejected(missing)

    assert message == f"{missing}: 1 bad record(s); nothing was imported"
    assert lines == [f"{missing} path='{missing}': no such file or folder"]


def test_a_folder_without_imi_files_is_rejected(tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": "world"}', encoding="utf-8")

    _, lines = rejected(tmp_path)

    assert lines == [f"{tmp_path} path='{tmp_path}': no IMI JSON files found"]


def test_a_single_file_that_is_not_an_imi_list_is_rejected(tmp_path):
    path = tmp_path / "packs.json"
    path.write_text('[{"pack_id": "WE-NT6ZM"}]', encoding="utf-8")

    _, lines = rejected(path)

    assert lines == [
        "packs.json file='packs.json': not an IMI firmware list, tcdirectory list or thin client list"
    ]


def test_a_folder_with_two_thin_client_files_is_rejected(imi):
    shutil.copy(imi / TC, imi / "zz-more-thinclients.json")

    _, lines = rejected(imi)

    assert lines == [
        f"zz-more-thinclients.json file='zz-more-thinclients.json': a second devices file ({TC})"
    ]
    assert snapshot() == EMPTY


def test_other_json_files_in_the_folder_are_ignored(imi):
    (imi / "notes.json").write_text('{"exported_by": "admin"}', encoding="utf-8")

    assert run(imi)[0] == DEMO_SUMMARY


# --- dry run ------------------------------------------------------------------------------------
def test_dry_run_reports_what_it_would_do_and_writes_nothing(monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("devices.tasks.async_task", lambda name, *args, **kw: queued.append(name))

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run(DEMO, "--dry-run")

    assert out == (
        "Dry run, nothing written. Would import devices: 240 new, 0 updated, 0 unchanged; "
        "directories: 12 new, 0 updated, 0 unchanged; firmwares: 8 new, 0 updated, 0 unchanged"
    )
    assert err == ""
    assert snapshot() == EMPTY
    assert queued == []


def test_dry_run_after_an_import_reports_the_changes_it_would_make(imi):
    run(imi)
    before = snapshot()
    edit(imi, "devices", 0, name="CHANGED")
    data = load(imi, "devices")
    data.append(dict(data[1], id="2001", unitID="00E0C5AA0003", mac="00E0C5AA0003"))
    save(imi, "devices", data)

    out, _ = run(imi, "--dry-run")

    assert out == (
        "Dry run, nothing written. Would import devices: 1 new, 1 updated, 239 unchanged; "
        "directories: 0 new, 0 updated, 12 unchanged; firmwares: 0 new, 0 updated, 8 unchanged"
    )
    assert snapshot() == before


def test_a_folder_named_like_an_imi_file_is_passed_over_not_a_crash(tmp_path):
    import shutil

    for name in ("imi-firmwares.json", "imi-tcdirectories.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    (tmp_path / "imi-thinclients-details.json").mkdir()
    out = io.StringIO()
    call_command("import_devices", str(tmp_path), stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == (
        "Imported directories: 12 new, 0 updated, 0 unchanged; firmwares: 8 new, 0 updated, 0 unchanged"
    )
    assert not Device.objects.exists()


# --- hostile input: each is a clear record error, never a traceback, and nothing is written ---------


def raw_devices_file(imi, text):
    (imi / FILES["devices"]).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "value, message",
    [
        ("NaN", "NaN is not a JSON number"),
        ("1e400", "number 1e400 is out of range"),
        ("Infinity", "Infinity"),
    ],
)
def test_non_finite_numbers_are_refused(imi, value, message):
    text = (
        (imi / FILES["devices"])
        .read_text(encoding="utf-8")
        .replace('"cpuSpeed": 2400', f'"cpuSpeed": {value}', 1)
    )
    raw_devices_file(imi, text)
    error, lines = rejected(imi)
    assert "not valid JSON" in lines[0] and message in lines[0]
    assert snapshot() == EMPTY


def test_json_nested_too_deeply_is_refused(imi):
    raw_devices_file(imi, "[" * 100_000 + "]" * 100_000)
    error, lines = rejected(imi)
    assert lines[0].endswith("not valid JSON: nested too deeply") or "not valid JSON" in lines[0]
    assert snapshot() == EMPTY


@pytest.mark.parametrize("field, value", [("name", "ITC\x00X"), ("comment", "\ud800"), ("site", "a\x00")])
def test_nul_and_lone_surrogates_are_refused_by_field(imi, field, value):
    edit(imi, "devices", 3, **{field: value})
    error, lines = rejected(imi)
    assert lines == [
        f"{FILES['devices']}[3] {field}='...': contains a NUL character or an invalid Unicode surrogate"
    ]
    assert snapshot() == EMPTY


@pytest.mark.parametrize("field, value", [("id", "²"), ("parentID", "١٠٥"), ("firmwareID", "１１")])
def test_non_ascii_digits_are_not_ids(imi, field, value):
    edit(imi, "devices", 0, **{field: value})
    error, lines = rejected(imi)
    assert len(lines) == 1 and lines[0].startswith(f"{FILES['devices']}[0] {field}={value!r}")
    assert snapshot() == EMPTY


def test_a_fullwidth_letter_is_not_a_hex_digit(imi):
    edit(imi, "devices", 0, mac="00E0C5C123ﬀ")
    error, lines = rejected(imi)
    assert lines == [f"{FILES['devices']}[0] mac='00E0C5C123ﬀ': not a MAC address (12 hexadecimal digits)"]


@pytest.mark.parametrize(
    "field, value", [("registrationDate", "01.01.0001 00:30:00"), ("lastBoottime", "0001-01-01 00:10")]
)
def test_dates_before_1970_are_refused(imi, field, value):
    edit(imi, "devices", 0, **{field: value})
    error, lines = rejected(imi)
    assert len(lines) == 1 and lines[0].startswith(f"{FILES['devices']}[0] {field}={value!r}:")
    assert snapshot() == EMPTY


def test_a_blank_name_is_missing(imi):
    edit(imi, "devices", 0, name="   ")
    error, lines = rejected(imi)
    assert lines == [f"{FILES['devices']}[0] name='   ': missing"]


def test_a_huge_bad_value_is_shortened_in_the_error(imi):
    edit(imi, "devices", 0, mac="X" * 1_000_000)
    error, lines = rejected(imi)
    assert len(lines[0]) < 400 and "(1000002 characters)" in lines[0]


def test_the_unit_id_of_a_licensed_device_cannot_change(imi):
    from devices.engine import run_cycle
    from devices.models import DeviceLicense
    from tests import factories as f

    run(imi)
    f.ald_on()
    f.pack("WE-AAAAA", total=500)
    f.register_all()
    run_cycle()
    assert DeviceLicense.objects.filter(device_id=1000).exists()
    before = snapshot()
    edit(imi, "devices", 0, unitID="00E0C5BBBB01")
    error, lines = rejected(imi)
    assert lines == [
        f"{FILES['devices']}[0] unitID='00E0C5BBBB01': device 1000 holds licenses bound to unit ID "
        "00E0C5C123B1; remove them before changing it"
    ]
    assert snapshot() == before
