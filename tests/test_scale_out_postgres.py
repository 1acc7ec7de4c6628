"""Scale-out: four `qcluster` processes on one PostgreSQL database license 20,000 devices registered in
bursts from packs totalling 15,000 licenses, and a worker killed with SIGKILL in the middle of a sweep
loses and doubles nothing.

The workers use the ORM broker on PostgreSQL (the Redis broker is exercised by test_queue_worker.py);
each is a real `manage.py qcluster` process with one worker, started in a session of its own so that
everything it forks is ended with it, even when the test fails."""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from devices.models import DeviceLicense, LicenseRequest, LicenseWait
from licensing.models import LicenseSlot, ProductPack
from tests import factories as f

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
CLUSTERS = 4
DEVICES = 20_000
BURST = 1_000
PACKS = {"WE-SCAL1": 6_000, "WE-SCAL2": 5_000, "WE-SCAL3": 4_000}  # 15,000 licenses
EXTRA_PACK = ("WE-SCAL4", 5_000)  # arrives later: the sweep that is killed licenses the waiting rest
UNIT_PREFIX = "00E0C8"

REGISTER = f"""
import time
from django.db import transaction
from devices.models import Device, Firmware
from devices.tasks import enqueue_license_devices
fw = Firmware.objects.get(version="11.08.440.01")
for start in range(0, {DEVICES}, {BURST}):
    with transaction.atomic():
        made = Device.objects.bulk_create(
            [Device(unit_id=f"{UNIT_PREFIX}{{n:06X}}", mac=f"{UNIT_PREFIX}{{n:06X}}", name=f"SCALE{{n}}",
                    firmware=fw) for n in range(start, start + {BURST})]
        )
        enqueue_license_devices([d.pk for d in made])  # as an import of a burst of devices does
    time.sleep(0.1)
print("REGISTERED")
"""
SWEEP = "from django_q.tasks import async_task; async_task('devices.tasks.ald_sweep', group='ald')"


def worker_env():
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}"
    if db.get("PASSWORD"):
        url += f":{db['PASSWORD']}"
    url += f"@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=url,  # the test database, which this test commits to
        Q_WORKERS="1",
        ALD_BATCH_SIZE="200",
        ALD_CLAIM_SECONDS="4",  # a dead worker's claims lapse quickly, so the next sweep takes them over
        ALD_LOG_LEVEL="WARNING",
    )
    return env


def manage(env, *args, timeout=180):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


class Clusters:
    """Four qcluster processes; ``stop`` ends every process they started."""

    def __init__(self, env, folder: Path):
        self.env, self.folder, self.procs, self.logs = env, folder, [], []

    def start(self):
        for i in range(CLUSTERS):
            path = self.folder / f"qcluster-{i}.log"
            log = open(path, "w")
            self.logs.append(path)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "qcluster"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.time() + 60
        while not all("ready for work" in p.read_text() for p in self.logs):
            assert time.time() < deadline, self.tail()
            assert all(p.poll() is None for p in self.procs), self.tail()
            time.sleep(0.2)

    def tail(self, chars=3000):
        return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in self.logs)

    def worker_running(self, func: str):
        """(log index, pid) of the worker process that logged it is processing ``func``."""
        for i, path in enumerate(self.logs):
            text = path.read_text()
            for name in re.findall(rf"(\S+) processing \S+ '{re.escape(func)}'", text):
                pids = re.findall(rf"{re.escape(name)} ready for work at (\d+)", text)
                if pids:
                    return i, int(pids[-1])
        return None

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.time() + 20
        for p in self.procs:
            try:
                p.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the session (workers, monitor, pusher)
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if p.poll() is None:
                p.wait(timeout=10)


def wait_until(check, timeout, what, clusters):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.time() < deadline, f"timed out waiting for {what}\n{clusters.tail()}"
        time.sleep(0.25)


def sweeps_done():
    from django_q.models import Task

    return Task.objects.filter(func="devices.tasks.ald_sweep").count()


def settled(expected_licensed, queue_empty=True):
    """All devices are licensed or waiting, no claim is open, and (``queue_empty``) no task is
    queued. The task of a killed worker stays in the queue, locked, until its retry time."""
    from django_q.models import OrmQ

    licensed = DeviceLicense.objects.filter(status="CURRENT").count()
    waiting = LicenseWait.objects.count()
    return (
        licensed == expected_licensed
        and licensed + waiting == DEVICES
        and not LicenseRequest.objects.exists()
        and not (queue_empty and OrmQ.objects.exists())
    )


def assert_invariants(expected_licensed):
    current = DeviceLicense.objects.filter(status="CURRENT")
    assert current.count() == expected_licensed
    per_unit = Counter(current.values_list("unit_id", flat=True))
    assert len(per_unit) == expected_licensed and set(per_unit.values()) == {1}  # no unit ID twice
    slots = LicenseSlot.objects.filter(released_at__isnull=True)
    slot_units = Counter(slots.values_list("unit_id", flat=True))
    assert set(slot_units.values()) == {1}, "a unit ID holds slots in two packs"
    assert set(slot_units) == set(per_unit)  # every license has its slot, every slot its license
    per_pack = dict(slots.values_list("pack__pack_id").annotate(n=Count("pk")).order_by())
    for pack_id, used in ProductPack.objects.values_list("pack_id", "used"):
        assert used == per_pack.get(pack_id, 0), (pack_id, used, per_pack.get(pack_id))
    waits = Counter(LicenseWait.objects.values_list("reason", flat=True))
    assert waits == ({"no_free_license": DEVICES - expected_licensed} if expected_licensed < DEVICES else {})
    assert not LicenseRequest.objects.exists()


def test_four_qclusters_license_twenty_thousand_devices_and_survive_a_killed_sweep(postgres, tmp_path):
    from django_q.models import Failure

    f.firmware()
    for pack_id, total in PACKS.items():
        f.pack(pack_id, total=total)
    f.register_all()
    f.ald_on()  # after the registration of the packs, so that no sweep is queued from this process
    env = worker_env()
    clusters = Clusters(env, tmp_path)
    try:
        clusters.start()
        started = time.time()
        out = manage(env, "shell", "-c", REGISTER).stdout
        assert "REGISTERED" in out
        wait_until(lambda: settled(15_000), 150, "the registration tasks to settle", clusters)
        registration_seconds = time.time() - started
        assert_invariants(15_000)
        assert sum(ProductPack.objects.values_list("used", flat=True)) == 15_000
        assert not Failure.objects.exists(), list(Failure.objects.values_list("func", "result"))

        # More licenses arrive; the sweep that would hand them out is killed half-way.
        f.pack(EXTRA_PACK[0], total=EXTRA_PACK[1])
        manage(env, "shell", "-c", SWEEP)
        running = wait_until(
            lambda: clusters.worker_running("devices.tasks.ald_sweep"), 60, "a sweep", clusters
        )
        wait_until(  # a few batches done, and one in flight: its claims are taken
            lambda: (
                DeviceLicense.objects.filter(status="CURRENT").count() >= 15_400
                and LicenseRequest.objects.exists()
            ),
            60,
            "the sweep to be under way",
            clusters,
        )
        os.kill(running[1], signal.SIGKILL)
        at_kill = DeviceLicense.objects.filter(status="CURRENT").count()
        claims_left = LicenseRequest.objects.count()
        assert at_kill < DEVICES, "the sweep finished before it could be killed"

        # The next sweeps (the schedule would run them) converge: the dead worker's claims lapse
        # and are replayed against the pack they named.
        deadline = time.time() + 90
        while not settled(DEVICES, queue_empty=False):
            assert time.time() < deadline, f"no convergence after the kill\n{clusters.tail()}"
            done = sweeps_done()
            manage(env, "shell", "-c", SWEEP)
            wait_until(lambda d=done: sweeps_done() > d, 60, "the next sweep", clusters)
        assert_invariants(DEVICES)
        assert ProductPack.objects.get(pack_id=EXTRA_PACK[0]).used == EXTRA_PACK[1]
        assert not Failure.objects.exists(), list(Failure.objects.values_list("func", "result"))
        print(
            f"registration of {DEVICES} devices settled in {registration_seconds:.1f} s; sweep killed at "
            f"{at_kill} licensed, leaving {claims_left} claim(s)"
        )
    finally:
        clusters.stop()
