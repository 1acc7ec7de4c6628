"""Racing workers against PostgreSQL: row locks and conditional UPDATEs only prove themselves there.

Each worker is a thread with its own database connection, as separate qcluster workers would be."""

import random
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from devices.engine import run_cycle
from devices.models import DeviceLicense, LicenseRequest, LicenseWait
from licensing.models import LicenseSlot, ProductPack
from licensing.services import request_licenses
from tests import factories as f

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8


def race(target, args_per_worker):
    barrier = threading.Barrier(len(args_per_worker))
    errors = []

    def work(args):
        try:
            barrier.wait(timeout=30)
            target(*args)
        except Exception as exc:  # reported below; a worker must not die silently
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(a,)) for a in args_per_worker]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a worker hung"
    assert errors == []


def test_eight_ald_workers_race_for_the_last_licenses(postgres, settings):
    assert connection.vendor == "postgresql"
    settings.ALD_BATCH_SIZE = 20  # many small batches, so the workers interleave their claims
    f.ald_on()
    f.pack("WE-RACE1", total=100)
    f.register_all()
    f.devices(300)

    race(run_cycle, [()] * WORKERS)

    assert DeviceLicense.objects.filter(status="CURRENT").count() == 100
    units = list(DeviceLicense.objects.values_list("unit_id", flat=True))
    assert len(units) == len(set(units)) == 100
    assert Counter(LicenseWait.objects.values_list("reason", flat=True)) == {"no_free_license": 200}
    assert ProductPack.objects.get(pack_id="WE-RACE1").used == 100
    slots = list(LicenseSlot.objects.filter(released_at__isnull=True).values_list("unit_id", flat=True))
    assert sorted(slots) == sorted(units)
    assert not LicenseRequest.objects.exists()  # every claim was settled


def test_eight_workers_asking_the_licensing_service_directly(postgres):
    pack = f.pack("WE-RACE2", total=100)
    fingerprint = f.ums().fingerprint
    units = [f.mac_for(n) for n in range(300)]
    plans = []
    for seed in range(WORKERS):  # every worker asks for all 300, in its own order and chunks
        order = units[:]
        random.Random(seed).shuffle(order)
        plans.append([order[i : i + 15] for i in range(0, len(order), 15)])

    def ask(chunks):
        for chunk in chunks:
            request_licenses(pack.pack_id, chunk, ums_fingerprint=fingerprint)

    race(ask, [(p,) for p in plans])

    pack.refresh_from_db()
    assert pack.used == 100
    bound = list(
        LicenseSlot.objects.filter(pack=pack, released_at__isnull=True).values_list("unit_id", flat=True)
    )
    assert len(bound) == len(set(bound)) == 100


def test_overlapping_requests_on_a_pack_with_room_are_never_refused_as_contended(postgres):
    """Eight workers asking for overlapping sets of 400 unit IDs out of 1,000 in a pack of 5,000:
    every request is granted whole (the pack's requests take turns under its row lock), nothing is
    bound twice."""
    pack = f.pack("WE-ROOMY", total=5000)
    fingerprint = f.ums().fingerprint
    units = [f.mac_for(n) for n in range(1000)]
    granted = Counter()

    def ask(seed):
        rng = random.Random(seed)
        for _ in range(5):
            chunk = rng.sample(units, 400)
            result = request_licenses(pack.pack_id, chunk, ums_fingerprint=fingerprint)
            assert not result.denied
            granted[seed] += len(result.granted)

    race(ask, [(seed,) for seed in range(WORKERS)])

    assert sum(granted.values()) == WORKERS * 5 * 400
    pack.refresh_from_db()
    bound = list(
        LicenseSlot.objects.filter(pack=pack, released_at__isnull=True).values_list("unit_id", flat=True)
    )
    assert len(bound) == len(set(bound)) == pack.used


def test_registration_tasks_for_the_same_devices_run_concurrently(postgres):
    """The registration trigger and sweeps may overlap: the same devices in several workers."""
    f.ald_on()
    f.pack("WE-RACE3", total=50)
    f.pack("WE-RACE4", total=50)
    f.register_all()
    ids = [d.pk for d in f.devices(120)]

    race(lambda: run_cycle(device_ids=ids), [()] * WORKERS)

    per_device = Counter(DeviceLicense.objects.filter(status="CURRENT").values_list("device_id", flat=True))
    assert len(per_device) == 100 and set(per_device.values()) == {1}
    assert sum(ProductPack.objects.values_list("used", flat=True)) == 100
    assert LicenseSlot.objects.filter(released_at__isnull=True).count() == 100
    assert LicenseWait.objects.count() == 20


def test_processes_starting_at_once_make_one_ums_id(postgres):
    from devices.models import DeploymentSettings
    from devices.services import ums_identity

    DeploymentSettings.load()
    seen = []
    race(lambda: seen.append(ums_identity().ums_id_fingerprint), [()] * WORKERS)
    assert len(seen) == WORKERS and len(set(seen)) == 1
    assert DeploymentSettings.load().ums_id_fingerprint == seen[0]
