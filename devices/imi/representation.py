"""Devices, directories and firmwares as IMI v3 JSON: field names and order as the reference shows,
IDs as strings, ``"-1"`` for the root, integers where clients parse integers."""

import datetime

from django.utils import timezone

from ald_portal import clock

ROOT = "-1"
# A device that reported within this time counts as online (the portal cannot ask the device).
ONLINE_WITHIN = datetime.timedelta(minutes=10)

# facets=details, in the reference's order; (IMI name, kind)
DETAIL_FIELDS = [
    ("networkName", str),
    ("site", "site"),
    ("department", "department"),
    ("costCenter", "cost_center"),
    ("comment", "comment"),
    ("assetID", "asset_id"),
    ("inserviceDate", "inservice_date"),
    ("serialNumber", "serial_number"),
    ("productId", "product_id"),
    ("umsStructuralTag", str),
    ("cpuSpeed", int),
    ("cpuType", str),
    ("deviceType", "device_type"),
    ("deviceSerialNumber", "device_serial_number"),
    ("osType", "os_type"),
    ("flashSize", int),
    ("memorySize", int),
    ("networkSpeed", int),
    ("duplexMode", str),
    ("graphicsChipset0", str),
    ("graphicsMemorySize0", int),
    ("graphicsChipset1", str),
    ("graphicsMemorySize1", int),
    ("monitorVendor1", str),
    ("monitorModel1", str),
    ("monitorSerialnumber1", str),
    ("monitorSize1", int),
    ("monitorNativeResolution1", str),
    ("monitor1YearOfManufacture", str),
    ("monitor1WeekOfManufacture", str),
    ("monitorVendor2", str),
    ("monitorModel2", str),
    ("monitorSerialnumber2", str),
    ("monitorSize2", int),
    ("monitorNativeResolution2", str),
    ("monitor2YearOfManufacture", str),
    ("monitor2WeekOfManufacture", str),
    ("biosVendor", str),
    ("biosVersion", str),
    ("biosDate", str),
    ("totalUsagetime", str),
    ("totalUptime", str),
]


def _int(value) -> int:
    """Numbers the UMS reports as integers; an unknown or unreadable value is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        try:
            return int(float(str(value).strip()))
        except (TypeError, ValueError, OverflowError):
            return 0


def _text(value) -> str:
    return "" if value is None else str(value)


def _when(value, fmt) -> str:
    return timezone.localtime(value).strftime(fmt) if value else ""


def _battery(device) -> int:
    return _int(device.details.get("batteryLevel", -1))


def device_json(device, details=False, online=False, single=False) -> dict:
    """TCResourceV3."""
    d = device.details or {}
    out = {
        "unitID": device.unit_id,
        "mac": device.mac,
        "firmwareID": str(device.firmware_id),
    }
    if details:
        out["networkName"] = _text(d.get("networkName", device.name))
    out["lastIP"] = device.last_ip
    if online:
        out["online"] = bool(device.last_contact and device.last_contact > clock.now() - ONLINE_WITHIN)
    if details:
        for name, kind in DETAIL_FIELDS[1:]:
            if kind is int:
                out[name] = _int(d.get(name, 0))
            elif kind is str:
                out[name] = _text(d.get(name, ""))
            else:
                out[name] = getattr(device, kind)
        out["lastBoottime"] = _when(device.last_boot, "%Y-%m-%d %H:%M")
        out["lastContact"] = _when(device.last_contact, "%Y-%m-%d %H:%M")
        out["configChanges"] = _text(d.get("configChanges", "APPLIED"))
    out["batteryLevel"] = _battery(device)
    out["id"] = str(device.pk)
    out["name"] = device.name
    if single or details:
        out["lastUser"] = _text(d.get("lastUser", ""))
    if details:
        out["registrationDate"] = _when(device.registration_date, "%d.%m.%Y %H:%M:%S")
        out["isThinClientRegistered"] = _text(d.get("isThinClientRegistered", "true"))
        proxied = _text(d.get("isConnectedViaReverseProxy", d.get("connectedViaReverseProxy", "false")))
        out["isConnectedViaReverseProxy"] = proxied
        out["connectedViaReverseProxy"] = proxied  # the name release note 12.09.110 uses
        if isinstance(d.get("deviceAttributes"), list):
            out["deviceAttributes"] = d["deviceAttributes"]
    out["parentID"] = str(device.directory_id) if device.directory_id else ROOT
    out["movedToBin"] = device.moved_to_bin
    out["objectType"] = "tc"
    out["links"] = []
    return out


def directory_url(request, pk) -> str:
    return request.build_absolute_uri(f"/umsapi/v3/directories/tcdirectories/{pk}")


def directory_json(request, directory, children=None) -> dict:
    """DirectoryResource; ``children`` = [(objectType, id)], shown as DirectoryChildren when any."""
    out = {}
    if children:
        out["DirectoryChildren"] = [
            {
                "objectType": kind,
                "id": str(pk),
                "link": {
                    "rel": kind,
                    "href": directory_url(request, pk)
                    if kind == "tcdirectory"
                    else request.build_absolute_uri(f"/umsapi/v3/thinclients/{pk}"),
                },
            }
            for kind, pk in children
        ]
    out.update(
        {
            "id": str(directory.pk),
            "name": directory.name,
            "parentID": str(directory.parent_id) if directory.parent_id else ROOT,
            "movedToBin": directory.moved_to_bin,
            "objectType": "tcdirectory",
            "links": [
                {"rel": "self", "href": directory_url(request, directory.pk)},
                {
                    "rel": "Parent",
                    "href": directory_url(request, directory.parent_id) if directory.parent_id else "root",
                },
            ],
        }
    )
    return out


def firmware_json(fw) -> dict:
    return {
        "id": str(fw.pk),
        "product": fw.product,
        "version": fw.version,
        "firmwareType": fw.firmware_type,
        "links": [],
    }
