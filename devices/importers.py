"""Import a UMS inventory from IMI v3 files: ``GET /v3/firmwares`` (wrapped in FwResource),
``GET /v3/directories/tcdirectories`` and ``GET /v3/thinclients?facets=details``.

Everything is validated first; a file with any bad record is rejected whole and nothing is written."""

import datetime
import re
from collections import Counter
from pathlib import Path

from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from ald_portal import jsondata
from ald_portal.importing import ImportRejected, ImportReport, RecordError, normalize_hex_id
from licensing.models import UNIT_ID_RE

from .models import MAC_RE, Device, Directory, Firmware, LicenseStatus, version_key
from .tasks import enqueue_license_devices

# IMI field -> model field, for the plain text fields of a thin client.
TEXT_FIELDS = {
    "name": "name",
    "lastIP": "last_ip",
    "site": "site",
    "department": "department",
    "costCenter": "cost_center",
    "comment": "comment",
    "assetID": "asset_id",
    "inserviceDate": "inservice_date",
    "serialNumber": "serial_number",
    "deviceSerialNumber": "device_serial_number",
    "productId": "product_id",
    "deviceType": "device_type",
    "osType": "os_type",
}
DATE_FIELDS = {  # IMI field -> (model field, format)
    "lastBoottime": ("last_boot", "%Y-%m-%d %H:%M"),
    "lastContact": ("last_contact", "%Y-%m-%d %H:%M"),
    "registrationDate": ("registration_date", "%d.%m.%Y %H:%M:%S"),
}
STRUCTURAL = {"id", "unitID", "mac", "firmwareID", "parentID", "movedToBin", "objectType", "links"}
REQUIRED_DEVICE_FIELDS = ("id", "unitID", "mac", "firmwareID", "name", "parentID")
FIRMWARE_FIELDS = {"product": "product", "version": "version", "firmwareType": "firmware_type"}
DIRECTORY_FIELDS = {"name": "name"}


IMI_ID_RE = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²" or "١" are digits to str.isdigit


def _is_imi_id(value) -> bool:
    return isinstance(value, str) and IMI_ID_RE.fullmatch(value) is not None and int(value) > 0


OBJECT_TYPES = {"tcdirectory": "directories", "tc": "devices"}


def _kind_of(data):
    """Which IMI list this is. A list is a thin client or directory list when its records say so; the
    kind most of them name wins, and a record that names another kind (or none) is a bad record of
    that list, reported by validation rather than making the whole file unrecognised."""
    if isinstance(data, dict) and "FwResource" in data:
        return "firmwares"
    if isinstance(data, list):
        named = Counter(
            item.get("objectType")
            for item in data
            if isinstance(item, dict) and item.get("objectType") in OBJECT_TYPES
        )
        if named:
            return OBJECT_TYPES[named.most_common(1)[0][0]]
    return None


def read_sources(path) -> dict:
    """PATH is a folder with the three IMI files, or one of them. Returns {kind: (name, data)}."""
    path = Path(path)
    if not path.exists():
        raise ImportRejected([RecordError(str(path), None, "path", str(path), "no such file or folder")])
    files = sorted(p for p in path.glob("*.json") if p.is_file()) if path.is_dir() else [path]
    sources, errors = {}, []
    for f in files:
        try:
            data = jsondata.loads(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            errors.append(RecordError(f.name, None, "file", f.name, f"not valid JSON: {exc}"))
            continue
        except RecursionError:
            errors.append(RecordError(f.name, None, "file", f.name, "not valid JSON: nested too deeply"))
            continue
        except OSError as exc:
            errors.append(RecordError(f.name, None, "file", f.name, f"cannot be read: {exc.strerror or exc}"))
            continue
        kind = _kind_of(data)
        if kind is None:
            if not path.is_dir():
                errors.append(
                    RecordError(
                        f.name,
                        None,
                        "file",
                        f.name,
                        "not an IMI firmware list, tcdirectory list or thin client list",
                    )
                )
            continue
        if kind in sources:
            errors.append(
                RecordError(f.name, None, "file", f.name, f"a second {kind} file ({sources[kind][0]})")
            )
            continue
        sources[kind] = (f.name, data)
    if not sources and not errors:
        errors.append(RecordError(str(path), None, "path", str(path), "no IMI JSON files found"))
    if errors:
        raise ImportRejected(errors)
    return sources


class InventoryImport:
    def __init__(self, sources: dict):
        self.sources = sources
        self.errors: list[RecordError] = []
        self.firmwares: dict[int, dict] = {}
        self._fw_index: dict[int, int] = {}
        self.directories: dict[int, dict] = {}
        self.devices: list[dict] = []

    def err(self, source, index, field, value, message):
        self.errors.append(RecordError(source, index, field, value, message))

    # --- validation -----------------------------------------------------------------------------
    def validate(self):
        self._validate_firmwares()
        self._validate_directories()
        self._validate_devices()
        if self.errors:
            raise ImportRejected(self.errors)

    def _validate_firmwares(self):
        if "firmwares" not in self.sources:
            return
        name, data = self.sources["firmwares"]
        items = data.get("FwResource")
        if not isinstance(items, list):
            self.err(name, None, "FwResource", items, "must be a list")
            return
        for i, fw in enumerate(items):
            if not isinstance(fw, dict):
                self.err(name, i, "record", fw, "must be an object")
                continue
            ok = True
            for f in ("id", "product", "version", "firmwareType"):
                if not isinstance(fw.get(f), str) or not fw.get(f).strip():
                    self.err(name, i, f, fw.get(f), "missing or empty")
                    ok = False
            if not ok:
                continue
            if not _is_imi_id(fw["id"]):
                self.err(name, i, "id", fw["id"], "must be a positive number as a string")
                continue
            try:
                version_key(fw["version"])
            except ValueError:
                self.err(name, i, "version", fw["version"], "not a dotted numeric version like 11.01.110")
                continue
            if not self._fits(name, i, fw, FIRMWARE_FIELDS, Firmware):
                continue
            fid = int(fw["id"])
            if fid in self.firmwares:
                self.err(name, i, "id", fw["id"], "duplicate firmware id")
                continue
            self.firmwares[fid] = fw
            self._fw_index[fid] = i
        self._check_firmware_identity(name)

    def _fits(self, name, i, record, fields, model) -> bool:
        """True if every text field fits its column; reports each one that does not."""
        ok = True
        for imi, model_field in fields.items():
            value = record.get(imi)
            limit = model._meta.get_field(model_field).max_length
            if isinstance(value, str) and len(value) > limit:
                self.err(name, i, imi, value, f"longer than {limit} characters")
                ok = False
        return ok

    def _check_firmware_identity(self, name):
        """A firmware is one (product, version, type): two ids for the same one, in the file or against
        one already in the database under another id, would break the unique constraint on write."""
        in_db = {
            (product, version, fw_type): pk
            for pk, product, version, fw_type in Firmware.objects.values_list(
                "id", "product", "version", "firmware_type"
            )
            if pk not in self.firmwares
        }
        seen = {}
        for fid, fw in self.firmwares.items():
            i = self._fw_index[fid]
            key = (fw["product"], fw["version"], fw["firmwareType"])
            if key in seen:
                other = seen[key]
                self.err(
                    name,
                    i,
                    "version",
                    fw["version"],
                    f"the same product, version and type as firmware {other} (record {self._fw_index[other]})",
                )
            elif key in in_db:
                self.err(
                    name,
                    i,
                    "version",
                    fw["version"],
                    f"the same product, version and type as firmware {in_db[key]}, already in the database",
                )
            else:
                seen[key] = fid

    def _validate_directories(self):
        if "directories" not in self.sources:
            return
        name, data = self.sources["directories"]
        known = set(Directory.objects.values_list("id", flat=True))
        pending = []
        for i, d in enumerate(data):
            if not isinstance(d, dict):
                self.err(name, i, "record", d, "must be an object")
                continue
            if d.get("objectType") != "tcdirectory":
                self.err(name, i, "objectType", d.get("objectType"), 'must be "tcdirectory"')
                continue
            if not _is_imi_id(d.get("id")):
                self.err(name, i, "id", d.get("id"), "missing, or not a positive number as a string")
                continue
            if not isinstance(d.get("name"), str) or not d["name"].strip():
                self.err(name, i, "name", d.get("name"), "missing or empty")
                continue
            if not self._fits(name, i, d, DIRECTORY_FIELDS, Directory):
                continue
            if int(d["id"]) in self.directories:
                self.err(name, i, "id", d["id"], "duplicate directory id")
                continue
            if not isinstance(d.get("movedToBin", False), bool):
                self.err(name, i, "movedToBin", d.get("movedToBin"), "must be true or false")
                continue
            self.directories[int(d["id"])] = d
            pending.append((i, d))
        all_ids = known | set(self.directories)
        for i, d in pending:
            parent = d.get("parentID")
            if parent != "-1" and not (_is_imi_id(parent) and int(parent) in all_ids):
                self.err(name, i, "parentID", parent, 'unknown directory (use "-1" for the root)')
        # a parent chain must end at the root, through the directories of the file and those already
        # in the database alike; each directory on a cycle is reported
        parent_of = {
            pk: parent
            for pk, parent in Directory.objects.values_list("id", "parent_id")
            if pk not in self.directories
        }
        parent_of.update(
            {
                k: (None if v.get("parentID") == "-1" else int(v["parentID"]))
                for k, v in self.directories.items()
                if v.get("parentID") == "-1" or _is_imi_id(v.get("parentID"))
            }
        )
        for i, d in pending:
            start = int(d["id"])
            seen, node = set(), parent_of.get(start)
            while node is not None and node in parent_of and node not in seen:
                if node == start:
                    self.err(name, i, "parentID", d.get("parentID"), "directories form a cycle")
                    break
                seen.add(node)
                node = parent_of[node]

    def _validate_devices(self):
        if "devices" not in self.sources:
            return
        name, data = self.sources["devices"]
        known_fw = set(Firmware.objects.values_list("id", flat=True)) | set(self.firmwares)
        known_dirs = set(Directory.objects.values_list("id", flat=True)) | set(self.directories)
        seen_units, seen_ids = {}, {}
        tz = timezone.get_current_timezone()
        for i, tc in enumerate(data):
            if not isinstance(tc, dict):
                self.err(name, i, "record", tc, "must be an object")
                continue
            if tc.get("objectType") != "tc":
                self.err(name, i, "objectType", tc.get("objectType"), 'must be "tc"')
                continue
            before = len(self.errors)
            bad = jsondata.unstorable_text(tc)
            if bad:
                self.err(name, i, bad, "...", "contains a NUL character or an invalid Unicode surrogate")
                continue
            for f in REQUIRED_DEVICE_FIELDS:
                value = tc.get(f)
                if value is None or (isinstance(value, str) and not value.strip()):
                    self.err(name, i, f, value, "missing")
            if len(self.errors) > before:
                continue
            row = {
                "details": {
                    k: v
                    for k, v in tc.items()
                    if k not in STRUCTURAL and k not in TEXT_FIELDS and k not in DATE_FIELDS
                }
            }
            if not _is_imi_id(tc["id"]):
                self.err(name, i, "id", tc["id"], "must be a positive number as a string")
            else:
                row["id"] = int(tc["id"])
                if row["id"] in seen_ids:
                    self.err(
                        name, i, "id", tc["id"], f"duplicate device id (also record {seen_ids[row['id']]})"
                    )
                seen_ids[row["id"]] = i
            mac = normalize_hex_id(tc["mac"])
            if mac is None or not MAC_RE.match(mac):
                self.err(name, i, "mac", tc["mac"], "not a MAC address (12 hexadecimal digits)")
            row["mac"] = mac
            unit = normalize_hex_id(tc["unitID"])
            if unit is None or not UNIT_ID_RE.match(unit):
                self.err(name, i, "unitID", tc["unitID"], "not a unit ID (12 or 18 hexadecimal digits)")
            else:
                row["_unit_raw"] = tc["unitID"]
                if unit in seen_units:
                    self.err(
                        name, i, "unitID", tc["unitID"], f"duplicate unit ID (also record {seen_units[unit]})"
                    )
                seen_units[unit] = i
            row["unit_id"] = unit
            fw = tc["firmwareID"]
            if not (_is_imi_id(fw) and int(fw) in known_fw):
                self.err(name, i, "firmwareID", fw, "unknown firmware")
            else:
                row["firmware_id"] = int(fw)
            parent = tc["parentID"]
            if parent == "-1":
                row["directory_id"] = None
            elif _is_imi_id(parent) and int(parent) in known_dirs:
                row["directory_id"] = int(parent)
            else:
                self.err(name, i, "parentID", parent, 'unknown directory (use "-1" for the root)')
            moved = tc.get("movedToBin", False)
            if not isinstance(moved, bool):
                self.err(name, i, "movedToBin", moved, "must be true or false")
            row["moved_to_bin"] = moved is True
            for imi, model_field in TEXT_FIELDS.items():
                value = tc.get(imi, "")
                if value is None:
                    value = ""
                if not isinstance(value, str):
                    self.err(name, i, imi, value, "must be text")
                    continue
                limit = Device._meta.get_field(model_field).max_length
                if len(value) > limit:
                    self.err(name, i, imi, value, f"longer than {limit} characters")
                row[model_field] = value
            for imi, (model_field, fmt) in DATE_FIELDS.items():
                value = tc.get(imi)
                if value in (None, ""):
                    if model_field == "registration_date":
                        continue  # the import time stands in for an unknown registration date
                    row[model_field] = None
                    continue
                try:
                    row[model_field] = timezone.make_aware(datetime.datetime.strptime(value, fmt), tz)
                except (TypeError, ValueError, OverflowError):
                    self.err(name, i, imi, value, f"not a date of the form {fmt.replace('%', '')}")
                    continue
                if row[model_field].year < 1970:
                    self.err(name, i, imi, value, "before 1970")
            row["_index"] = i
            self.devices.append(row)
        self._check_against_database(name)

    def _check_against_database(self, name):
        # A licensed device's licenses are bound to its unit ID: changing it would leave them bound
        # to a unit no device has, and let another device take that slot.
        by_id = {r["id"]: r for r in self.devices if r.get("id") and r.get("unit_id")}
        licensed = (
            Device.objects.filter(pk__in=list(by_id), licenses__isnull=False)
            .exclude(licenses__status=LicenseStatus.REVOKED)
            .values_list("pk", "unit_id")
            .distinct()
        )
        for device_id, unit in licensed:
            row = by_id[device_id]
            if row["unit_id"] != unit:
                self.err(
                    name,
                    row["_index"],
                    "unitID",
                    row["_unit_raw"],
                    f"device {device_id} holds licenses bound to unit ID {unit}; remove them before changing it",
                )
        by_unit = {r["unit_id"]: r for r in self.devices if r.get("unit_id")}
        taken = Device.objects.filter(unit_id__in=list(by_unit)).values_list("unit_id", "id")
        for unit, device_id in taken:
            row = by_unit[unit]
            if row.get("id") != device_id:
                self.err(
                    name,
                    row["_index"],
                    "unitID",
                    row["_unit_raw"],
                    f"duplicate unit ID: already registered as device {device_id}",
                )

    # --- writing --------------------------------------------------------------------------------
    def write(self, dry_run=False) -> ImportReport:
        report = ImportReport(dry_run=dry_run)
        with transaction.atomic():
            self._write_firmwares(report)
            self._write_directories(report)
            new_ids = self._write_devices(report)
            if dry_run:
                transaction.set_rollback(True)
                return report
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    for sql in connection.ops.sequence_reset_sql(no_style(), [Firmware, Directory, Device]):
                        cursor.execute(sql)
            enqueue_license_devices(new_ids)
        return report

    @staticmethod
    def _count(report, kind, created, updated, unchanged):
        report.created[kind], report.updated[kind], report.unchanged[kind] = created, updated, unchanged

    def _write_firmwares(self, report):
        if "firmwares" not in self.sources:
            return
        existing = Firmware.objects.in_bulk(list(self.firmwares))
        created = updated = 0
        for fid, fw in self.firmwares.items():
            values = {"product": fw["product"], "version": fw["version"], "firmware_type": fw["firmwareType"]}
            obj = existing.get(fid)
            if obj is None:
                Firmware(id=fid, **values).save()
                created += 1
            elif any(getattr(obj, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(obj, k, v)
                obj.save()
                updated += 1
        self._count(report, "firmwares", created, updated, len(self.firmwares) - created - updated)

    def _write_directories(self, report):
        if "directories" not in self.sources:
            return
        existing = Directory.objects.in_bulk(list(self.directories))
        created = updated = 0
        # parents before children
        order, placed = [], set(Directory.objects.values_list("id", flat=True)) - set(self.directories)
        remaining = dict(self.directories)
        while remaining:
            progress = len(remaining)
            for did, d in list(remaining.items()):
                parent = None if d["parentID"] == "-1" else int(d["parentID"])
                if parent is None or parent in placed:
                    order.append((did, d, parent))
                    placed.add(did)
                    del remaining[did]
            if len(remaining) == progress:
                raise ImportRejected(
                    [RecordError("directories", None, "parentID", sorted(remaining), "unreachable")]
                )
        for did, d, parent in order:
            values = {"name": d["name"], "parent_id": parent, "moved_to_bin": d.get("movedToBin", False)}
            obj = existing.get(did)
            if obj is None:
                Directory.objects.create(id=did, **values)
                created += 1
            elif any(getattr(obj, k) != v for k, v in values.items()):
                Directory.objects.filter(pk=did).update(**values)
                updated += 1
        self._count(report, "directories", created, updated, len(self.directories) - created - updated)

    def _write_devices(self, report) -> list[int]:
        if "devices" not in self.sources:
            return []
        rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.devices]
        existing = Device.objects.in_bulk([r["id"] for r in rows])
        new, changed = [], []
        for r in rows:
            obj = existing.get(r["id"])
            if obj is None:
                new.append(Device(**r))
                continue
            if any(getattr(obj, k) != v for k, v in r.items() if k != "id"):
                for k, v in r.items():
                    setattr(obj, k, v)
                changed.append(obj)
        Device.objects.bulk_create(new, batch_size=500)
        fields = sorted({k for r in rows for k in r} - {"id"})
        if changed:
            Device.objects.bulk_update(changed, fields, batch_size=500)
        self._count(report, "devices", len(new), len(changed), len(rows) - len(new) - len(changed))
        return [d.id for d in new]


def import_inventory(path, dry_run=False) -> ImportReport:
    job = InventoryImport(read_sources(path))
    job.validate()
    return job.write(dry_run=dry_run)
