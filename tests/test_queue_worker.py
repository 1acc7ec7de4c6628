"""The real queue: a `manage.py qcluster` process licenses a device registered in another process.

Runs on an SQLite file of its own (the embedded profile), with the ORM broker and, where Redis is
reachable, with the Redis broker."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import missing_service

ROOT = Path(settings.BASE_DIR)
SETUP = """
from devices.services import refresh_registered_packs, ums_identity, update_deployment_settings
from devices.models import Firmware
from licensing.models import Company, ProductPack
from licensing.services import register_ums_id
import datetime
company = Company.objects.create(name="Acme", global_account_id="GA-1")
conf = ums_identity()
ums = register_ums_id(company, conf.ums_id_fingerprint, "worker test")
ProductPack.objects.create(pack_id="WE-QUEUE", company=company, product_name="IGEL Workspace Edition",
    product_type="WE", total_licenses=5, start_date=datetime.date(2020, 1, 1), assigned_ums=ums)
refresh_registered_packs()
Firmware.objects.create(id=11, product="IGEL OS 11", version="11.08.440.01", firmware_type="LX")
update_deployment_settings("test", ald_enabled=True)
"""
REGISTER = """
import time
from devices.models import Device
d = Device.objects.create(unit_id="00E0C5AA0001", mac="00E0C5AA0001", name="new-device", firmware_id=11)
print("COMMITTED", d.pk, time.time())
"""


def redis_url():
    url = os.environ.get("ALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=1).close()
    except OSError:
        missing_service(f"needs Redis at {url} for the Redis broker")
    return url


@pytest.fixture(params=["orm", "redis"])
def worker_env(request, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    env["ALD_VAR_DIR"] = str(tmp_path)
    if request.param == "redis":
        import redis

        env["REDIS_URL"] = redis_url()
        # a queue name of its own: the test touches no other key on a Redis it may share
        env["Q_CLUSTER_NAME"] = f"ald-portal-test-{uuid.uuid4().hex[:12]}"
        yield env, tmp_path / "portal.sqlite3"
        client = redis.Redis.from_url(env["REDIS_URL"])
        for key in client.scan_iter(f"*{env['Q_CLUSTER_NAME']}*"):
            client.delete(key)
        return
    yield env, tmp_path / "portal.sqlite3"


def manage(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def test_a_registered_device_is_licensed_by_the_worker_within_two_seconds(worker_env):
    env, db = worker_env
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", SETUP)
    log = open(db.parent / "qcluster.log", "w+")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while "running" not in (db.parent / "qcluster.log").read_text() and time.time() < deadline:
            assert worker.poll() is None, (db.parent / "qcluster.log").read_text()
            time.sleep(0.2)
        out = manage(env, "shell", "-c", REGISTER).stdout
        device_id, committed_at = out.split("COMMITTED", 1)[1].split()[:2]
        licensed_at = None
        conn = sqlite3.connect(db, timeout=30)
        while time.time() < float(committed_at) + 10:
            row = conn.execute(
                "SELECT pack_id FROM devices_devicelicense WHERE device_id = ? AND status = 'CURRENT'",
                (device_id,),
            ).fetchone()
            if row:
                licensed_at = time.time()
                break
            time.sleep(0.05)
        used = conn.execute("SELECT used FROM licensing_productpack WHERE pack_id = 'WE-QUEUE'").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.close()
        assert licensed_at is not None, (db.parent / "qcluster.log").read_text()
        assert row == ("WE-QUEUE",)
        assert used == 1
        assert journal == "wal"  # web server and worker share the file without locking each other out
        assert licensed_at - float(committed_at) < 2.0
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
