"""What the IMI changes, with its rules: create, update, delete devices, commands, directory create,
rename, move and delete. Each checks everything first and refuses with the ITG error naming the field
and value, changing nothing; each change is an executed action naming the user."""

import re
import time
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ald_portal.importing import normalize_hex_id

from ..device_licenses import delete_device as delete_device_and_licenses
from ..directories import subtree
from ..models import MAC_RE, DeploymentEvent, Device, DeviceCommand, Directory, Firmware
from ..tasks import enqueue_license_devices
from . import errors
from .representation import ROOT

# IMI field -> Device field, for the text a client may set on create and update.
TEXT_FIELDS = {
    "site": "site",
    "department": "department",
    "costCenter": "cost_center",
    "lastIP": "last_ip",
    "comment": "comment",
    "assetID": "asset_id",
    "inserviceDate": "inservice_date",
    "serialNumber": "serial_number",
}
UPDATE_FIELDS = ("name", *TEXT_FIELDS, "deviceAttributes")
COMMANDS = tuple(DeviceCommand.Command.values)
ID_RE = re.compile(r"[0-9]{1,18}")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def parse_id(value, field="id") -> int:
    """An IMI ID: a string (or number) of ASCII digits."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not ID_RE.fullmatch(text.strip()):
        raise errors.number_format(field, value)
    return int(text.strip())


def _event(actor, action, message, device=None, unit_id=""):
    DeploymentEvent.objects.create(
        actor=actor,
        action=action,
        device=device,
        unit_id=unit_id or (device.unit_id if device else ""),
        message=message[:500],
    )


def _text(body, field, model_field):
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.invalid_body(f"{field} {value!r} must be a string")
    limit = Device._meta.get_field(model_field).max_length
    if len(value) > limit:
        raise errors.invalid_body(f"{field} is longer than {limit} characters ({value[:40]!r}...)")
    if "\x00" in value:
        raise errors.invalid_body(f"{field} {value!r} contains a NUL character")
    return value


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or CONTROL_RE.search(value):
        raise errors.invalid_name(value)
    return value.strip()


# How much a device's attributes may hold: what a UMS administrator defines is a few dozen
# attributes with short values, not megabytes a request.
MAX_ATTRIBUTES = 200
MAX_IDENTIFIER = 100
MAX_VALUE = 1000
LARGEST_NUMBER = 2**63 - 1  # a 64-bit integer, as the UMS stores numeric attributes


def _device_attributes(value) -> list:
    if not isinstance(value, list):
        raise errors.invalid_body(f"deviceAttributes {value!r} must be a list")
    if len(value) > MAX_ATTRIBUTES:
        raise errors.invalid_body(f"deviceAttributes has {len(value)} entries; at most {MAX_ATTRIBUTES}")
    out = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("identifier"), str)
            or not item["identifier"]
        ):
            raise errors.invalid_body(f"deviceAttributes[{i}] {item!r} needs an identifier")
        if len(item["identifier"]) > MAX_IDENTIFIER:
            raise errors.invalid_body(
                f"deviceAttributes[{i}].identifier is longer than {MAX_IDENTIFIER} characters "
                f"({item['identifier'][:40]!r}...)"
            )
        attr_value = item.get("value")
        if isinstance(attr_value, bool) or not isinstance(attr_value, str | int | float):
            raise errors.invalid_body(
                f"deviceAttributes[{i}].value {attr_value!r} must be a string, number or date"
            )
        if isinstance(attr_value, str) and len(attr_value) > MAX_VALUE:
            raise errors.invalid_body(
                f"deviceAttributes[{i}].value is longer than {MAX_VALUE} characters ({attr_value[:40]!r}...)"
            )
        if isinstance(attr_value, int) and abs(attr_value) > LARGEST_NUMBER:
            raise errors.invalid_body(
                f"deviceAttributes[{i}].value {str(attr_value)[:40]}... is beyond a 64-bit number"
            )
        out.append({"identifier": item["identifier"], "value": attr_value})
    return out


def _merge_attributes(old, new) -> list:
    merged = {a["identifier"]: a for a in (old if isinstance(old, list) else []) if isinstance(a, dict)}
    merged.update({a["identifier"]: a for a in new})
    return list(merged.values())


def _object(body):
    if not isinstance(body, dict):
        raise errors.invalid_body(f"expected a JSON object, got {type(body).__name__}")
    return body


def _target_directory(value, field="parentID"):
    """None for the root ("-1"), else a directory that exists and is not in the recycle bin."""
    if value is None or value == ROOT or value == -1:
        return None
    pk = parse_id(value, field)
    directory = Directory.objects.filter(pk=pk).first()
    if directory is None:
        raise errors.parent_not_found(value) if field == "parentID" else errors.target_dir_not_found(value)
    if directory.moved_to_bin:
        raise errors.target_in_bin(value)
    return directory


# --- thin clients ---------------------------------------------------------------------------------


def create_device(body, actor) -> Device:
    """PUT /v3/thinclients: a new device (unit ID = MAC), handed to ALD when the transaction commits."""
    body = _object(body)
    raw_mac = body.get("mac")
    if raw_mac is None or raw_mac == "":
        raise errors.no_mac()
    mac = normalize_hex_id(raw_mac) if isinstance(raw_mac, str) else None
    if mac is None or not MAC_RE.match(mac):
        raise errors.mac_length(raw_mac)
    raw_fw = body.get("firmwareID")
    if raw_fw is None or raw_fw == "":
        raise errors.no_firmware()
    firmware = Firmware.objects.filter(pk=parse_id(raw_fw, "firmwareID")).first()
    if firmware is None:
        raise errors.firmware_not_found(raw_fw)
    directory = _target_directory(body.get("parentID"))
    name = _name(body["name"]) if "name" in body else f"ITC{mac}"
    values = {model_field: _text(body, field, model_field) for field, model_field in TEXT_FIELDS.items()}
    details = {}
    if "deviceAttributes" in body:
        details["deviceAttributes"] = _device_attributes(body["deviceAttributes"])
    taken = Device.objects.filter(unit_id=mac).values_list("pk", flat=True).first()
    if taken is None:
        taken = Device.objects.filter(mac=mac).values_list("pk", flat=True).first()
    if taken is not None:
        raise errors.duplicate_key(f"MAC {mac} is already registered as thin client {taken}.")
    try:
        with transaction.atomic():
            device = Device.objects.create(
                unit_id=mac,
                mac=mac,
                name=name,
                firmware=firmware,
                directory=directory,
                details=details,
                **values,
            )
            _event(
                actor,
                DeploymentEvent.Action.DEVICE_CREATED,
                f"Thin client {name} ({mac}) created through the IMI in "
                f"{directory.name if directory else 'the root directory'}",
                device=device,
            )
    except IntegrityError:  # another request registered the same MAC a moment ago
        raise errors.duplicate_key(f"MAC {mac} is already registered.") from None
    return device


def live_device(tc_id) -> Device:
    device = Device.objects.filter(pk=parse_id(tc_id, "tcId")).first()
    if device is None:
        raise errors.tc_not_found(tc_id)
    if device.moved_to_bin:
        raise errors.tc_in_bin(tc_id)
    return device


def update_device(tc_id, body, actor) -> list[str]:
    """PUT /v3/thinclients/{id}: the properties given; returns what changed."""
    device = live_device(tc_id)
    body = _object(body)
    if not any(field in body for field in UPDATE_FIELDS):
        raise errors.no_valid_property(UPDATE_FIELDS)
    new = {}
    if "name" in body:
        new["name"] = _name(body["name"])
    for field, model_field in TEXT_FIELDS.items():
        if field in body:
            new[model_field] = _text(body, field, model_field)
    attributes = _device_attributes(body["deviceAttributes"]) if "deviceAttributes" in body else None
    with transaction.atomic():
        # Read what is changed under the device's row lock: parallel updates each merge their
        # attributes into what the one before wrote, and a device deleted meanwhile is not found.
        device = Device.objects.select_for_update().filter(pk=device.pk).first()
        if device is None:
            raise errors.tc_not_found(tc_id)
        changes = [f"{k}: {getattr(device, k)!r} -> {v!r}" for k, v in new.items() if getattr(device, k) != v]
        details = dict(device.details or {})
        if attributes is not None:
            merged = _merge_attributes(details.get("deviceAttributes"), attributes)
            if merged != details.get("deviceAttributes"):
                changes.append("deviceAttributes")
                details["deviceAttributes"] = merged
        if not changes:
            return []
        Device.objects.filter(pk=device.pk).update(details=details, **new)
        _event(
            actor,
            DeploymentEvent.Action.DEVICE_CHANGED,
            "Changed through the IMI: " + "; ".join(changes),
            device,
        )
    return changes


def _exec_id() -> str:
    return f"ID-ALD-{uuid.uuid4().hex}"


def delete_device(tc_id, actor, delete_licenses=False) -> dict:
    """DELETE /v3/thinclients/{id}: deleted, not moved to the recycle bin. The device's license slots
    are freed only when asked (``deletelicenses=true``), like the UMS's *Delete licenses* box."""
    device = live_device(tc_id)
    try:
        delete_device_and_licenses(device.pk, actor=actor, delete_licenses=delete_licenses)
    except ValidationError as exc:
        if "device" in getattr(exc, "error_dict", {}):  # deleted by another request meanwhile
            raise errors.tc_not_found(tc_id) from None
        # the licensing service could not free the slots: nothing deleted
        raise errors.server_not_available(" ".join(exc.messages)) from None
    return {
        "execID": _exec_id(),
        "id": str(device.pk),
        "mac": device.mac,
        "message": "OK",
        "exectime": int(time.time() * 1000),
        "state": "SUCCESS",
    }


def _api_objects(body, allowed_types) -> list[tuple[str, int]]:
    if not isinstance(body, list):
        raise errors.invalid_body(
            f'expected a list of objects like {{"id": "27", "type": "tc"}}, got {body!r}'[:300]
        )
    if not body:
        raise errors.id_list_empty()
    out = []
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise errors.invalid_body(f"[{i}] {item!r} is not an object")
        kind = item.get("type")
        if kind not in allowed_types:
            raise errors.invalid_body(f"[{i}].type {kind!r} is not one of {', '.join(allowed_types)}")
        out.append((kind, parse_id(item.get("id"), f"[{i}].id")))
    return out


def send_command(command, body, actor) -> list[dict]:
    """POST /v3/thinclients?command=...: recorded per device, each an executed action."""
    if command not in COMMANDS:
        raise errors.invalid_command(command)
    ids = list(dict.fromkeys(pk for _, pk in _api_objects(body, ("tc",))))
    devices = Device.objects.in_bulk(ids)
    for pk in ids:
        if pk not in devices:
            raise errors.tc_not_found(pk)
        if devices[pk].moved_to_bin:
            raise errors.tc_in_bin(pk)
    exec_id, label = _exec_id(), DeviceCommand.Command(command).label
    exectime = str(int(time.time() * 1000))
    with transaction.atomic():
        DeviceCommand.objects.bulk_create(
            DeviceCommand(device=devices[pk], command=command, exec_id=exec_id, actor=actor) for pk in ids
        )
        DeploymentEvent.objects.bulk_create(
            DeploymentEvent(
                actor=actor,
                action=DeploymentEvent.Action.COMMAND,
                device=devices[pk],
                unit_id=devices[pk].unit_id,
                message=f"{label} ({command}) sent through the IMI, execution {exec_id}",
            )
            for pk in ids
        )
    return [
        {
            "execID": exec_id,
            "id": str(pk),
            "mac": devices[pk].mac,
            "exectime": exectime,
            "message": "OK",
            "state": "SUCCESS",
        }
        for pk in ids
    ]


# --- directories ------------------------------------------------------------------------------------


def _directory_name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or CONTROL_RE.search(value):
        raise errors.invalid_body(f"name {value!r} must be 1 to 200 printable characters")
    return value.strip()


def directory(dir_id) -> Directory:
    found = Directory.objects.filter(pk=parse_id(dir_id)).first()
    if found is None:
        raise errors.target_dir_not_found(dir_id)
    return found


def create_directory(body, actor) -> Directory:
    """PUT /v3/directories/tcdirectories/: a new directory under the root."""
    body = {} if body is None else _object(body)
    name = _directory_name(body["name"]) if "name" in body else "New Directory"
    with transaction.atomic():
        created = Directory.objects.create(name=name)
        _event(
            actor,
            DeploymentEvent.Action.DIRECTORY,
            f"Directory {name} ({created.pk}) created through the IMI",
        )
    return created


def rename_directory(dir_id, body, actor) -> None:
    found = directory(dir_id)
    body = _object(body)
    if "name" not in body:
        raise errors.no_valid_property(("name",))
    name = _directory_name(body["name"])
    if name == found.name:
        return
    with transaction.atomic():
        Directory.objects.filter(pk=found.pk).update(name=name)
        _event(
            actor,
            DeploymentEvent.Action.DIRECTORY,
            f"Directory {found.pk} renamed through the IMI: {found.name!r} -> {name!r}",
        )


def move_into_directory(dir_id, body, actor) -> list[dict]:
    """PUT .../tcdirectories/{id}?operation=move: devices and directories into the directory
    ("-1" = the root). Objects that do not exist are answered ``does_not_exist``; a directory moved
    into itself or below itself refuses the whole request. Moved devices are handed to ALD, as
    distribution conditions may now select them."""
    target = _target_directory(dir_id, field="id")
    objects = _api_objects(body, ("tc", "tcdirectory"))
    tc_ids = [pk for kind, pk in objects if kind == "tc"]
    dir_ids = [pk for kind, pk in objects if kind == "tcdirectory"]
    devices = Device.objects.in_bulk(tc_ids)
    dirs = Directory.objects.in_bulk(dir_ids)
    for pk in tc_ids:
        if pk in devices and devices[pk].moved_to_bin:
            raise errors.tc_in_bin(pk)
    results, moved_devices, moved_dirs = [], [], []
    with transaction.atomic():
        if target is not None and dirs:
            # The tree as it is now, with every directory locked (in id order, the one order every
            # move takes): two opposite moves at once cannot both pass the check and make a cycle.
            tree = dict(Directory.objects.select_for_update().order_by("pk").values_list("pk", "parent_id"))
            if target.pk not in tree:
                raise errors.target_dir_not_found(dir_id)  # deleted meanwhile
            if target.pk in subtree(list(dirs), tree):
                raise errors.invalid_body(
                    f"directory {target.pk} is one of the moved directories or below one of them"
                )
        elif target is not None and not Directory.objects.select_for_update().filter(pk=target.pk).exists():
            raise errors.target_dir_not_found(dir_id)  # deleted meanwhile (locked now: it stays)
        for kind, pk in objects:
            found = devices.get(pk) if kind == "tc" else dirs.get(pk)
            # an object deleted meanwhile updates no row
            if kind == "tc":
                moved = found is not None and Device.objects.filter(pk=pk).update(directory=target)
            else:
                moved = found is not None and Directory.objects.filter(pk=pk).update(parent=target)
            if not moved:
                results.append({"id": str(pk), "results": "does_not_exist"})
                continue
            (moved_devices if kind == "tc" else moved_dirs).append(pk)
            results.append({"id": str(pk), "results": "successful"})
        where = f"{target.name} ({target.pk})" if target else "the root directory"
        for pk in moved_devices:
            _event(
                actor, DeploymentEvent.Action.DIRECTORY, f"Moved through the IMI into {where}", devices[pk]
            )
        for pk in moved_dirs:
            _event(
                actor,
                DeploymentEvent.Action.DIRECTORY,
                f"Directory {dirs[pk].name} ({pk}) moved through the IMI into {where}",
            )
        affected = set(moved_devices)
        if moved_dirs:
            affected |= set(
                Device.objects.filter(directory_id__in=subtree(moved_dirs)).values_list("pk", flat=True)
            )
        enqueue_license_devices(affected)
    return results


def delete_directory(dir_id, actor) -> None:
    """Only an empty directory goes; one a pack's distribution condition names stays."""
    with transaction.atomic():
        # Checked under the directory's row lock: a move into it waits for the delete (and then finds
        # it gone), or the delete waits for the move (and then finds it not empty).
        found = Directory.objects.select_for_update().filter(pk=parse_id(dir_id)).first()
        if found is None:
            raise errors.target_dir_not_found(dir_id)
        if found.children.exists() or found.devices.exists():
            raise errors.directory_not_empty(found.pk)
        packs = list(found.pack_conditions.order_by("pack_id").values_list("pack_id", flat=True))
        if packs:
            raise errors.directory_has_rule(found.pk, packs)
        found.delete()
        _event(
            actor,
            DeploymentEvent.Action.DIRECTORY,
            f"Directory {found.name} ({dir_id}) deleted through the IMI",
        )
