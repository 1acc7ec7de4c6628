"""The whole path on the demo inventory: ILP pack list -> UMS registration -> ALD, with exact counts.

Expected numbers come from the demo files: 240 devices, 9 in the recycle bin, 7 of the others on
IGEL OS 10 (too old for Workspace Edition); 62 live devices under Bremen (EMP condition); 60 live
devices in Leeds/Call Center (ADR condition), 5 of them below IGEL OS 11.01.110."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from devices.models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    Directory,
    LicenseWait,
    RegisteredPack,
)
from licensing.models import LicenseSlot, ProductPack

pytestmark = pytest.mark.django_db
DEMO = Path(settings.BASE_DIR) / "demo_data"


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_fixture_facts_behind_the_expected_numbers():
    devices = json.loads((DEMO / "imi-thinclients-details.json").read_text())
    live = [d for d in devices if not d["movedToBin"]]
    assert (len(devices), len(live)) == (240, 231)
    assert sum(d["firmwareID"] == "2" for d in live) == 7  # 10.06.190
    assert sum(d["parentID"] in {"105", "106"} for d in live) == 62  # Bremen/Logistics, Bremen/IT
    callcenter = [d for d in live if d["parentID"] == "111"]
    assert (len(callcenter), sum(d["firmwareID"] in {"2", "6"} for d in callcenter)) == (60, 5)


def test_import_register_and_deploy_the_demo_inventory():
    run(
        "import_packs",
        str(DEMO / "ilp-product-packs.csv"),
        "--company",
        "Demo Company AG",
        "--global-account-id",
        "GA-100234",
        "--accept-eula",
        "--assign",
    )
    run("import_devices", str(DEMO))
    for pack_id, name in [("EMP-2PMH4", "Bremen"), ("ADR-R2JGU", "Call Center")]:
        RegisteredPack.objects.get(pack_id=pack_id).condition_directories.set(
            Directory.objects.filter(name=name)
        )
    run("ald_settings", "--enable")

    report = json.loads(run("ald_run", "--json"))

    assert report["licensed_by_pack"] == {
        # WE: 224 devices need it; most allocated first, then earliest registered (file order)
        "WE-NT6ZM": 120,
        "WE-JTWXX": 80,
        "WE-BRFVW": 24,
        "EMP-2PMH4": 60,  # 62 Bremen devices
        "ADR-R2JGU": 40,  # 55 call-center devices new enough
    }
    assert report["waiting_reasons"] == {"no_free_license": 2 + 15, "os_too_old": 7 + 5}
    assert report["devices_licensed"] == 224
    assert report["packs"]["WE-GNRD6"] == {"total": 25, "used": 0, "free": 25}  # expired
    assert report["packs"]["DEMO-JE6BK"] == {"total": 10, "used": 0, "free": 10}  # no conditions
    assert report["packs"]["WE-BRFVW"] == {"total": 30, "used": 24, "free": 6}

    waits = Counter(LicenseWait.objects.values_list("service", "reason"))
    assert waits == {
        ("WE", "os_too_old"): 7,
        ("EMP", "no_free_license"): 2,
        ("ADDON_ADR", "no_free_license"): 15,
        ("ADDON_ADR", "os_too_old"): 5,
    }
    assert report["devices_waiting"] == LicenseWait.objects.values("device").distinct().count()

    # both sides agree: licensing slots, pack counters, UMS licenses, registered pack counters
    used = dict(ProductPack.objects.values_list("pack_id", "used"))
    slots = Counter(
        LicenseSlot.objects.filter(released_at__isnull=True).values_list("pack__pack_id", flat=True)
    )
    licenses = Counter(DeviceLicense.objects.filter(status="CURRENT").values_list("pack_id", flat=True))
    registered = dict(RegisteredPack.objects.values_list("pack_id", "used"))
    assert {k: v for k, v in used.items() if v} == dict(slots) == dict(licenses)
    assert registered == used
    assert not DeviceLicense.objects.filter(device__moved_to_bin=True).exists()
    assert DeploymentEvent.objects.filter(action="deploy").count() == 324

    again = json.loads(run("ald_run", "--json"))
    assert again["devices_licensed"] == 0
    assert again["waiting_reasons"] == report["waiting_reasons"]


def test_seed_demo_twice_changes_nothing():
    run("seed_demo")
    counts = lambda: {  # noqa: E731
        model.__name__: model.objects.count()
        for model in (Device, Directory, ProductPack, RegisteredPack, DeploymentEvent)
    }
    first = counts()
    conf = DeploymentSettings.load()
    out = run("seed_demo")
    assert counts() == first
    assert "0 new, 0 updated, 240 unchanged" in out
    assert DeploymentSettings.load().ums_id_fingerprint == conf.ums_id_fingerprint
    assert first["Device"] == 240 and first["ProductPack"] == 8 and first["RegisteredPack"] == 8
    assert DeploymentSettings.load().ald_enabled is True
