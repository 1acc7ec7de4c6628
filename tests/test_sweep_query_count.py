"""A sweep issues a bounded number of queries per batch of devices, never one per device."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.engine import run_cycle
from devices.models import DeviceLicense
from tests import factories as f

pytestmark = pytest.mark.django_db


def sweep_queries(n_devices, settings):
    settings.ALD_BATCH_SIZE = 1000
    f.ald_on()
    f.pack("WE-AAAAA", total=n_devices // 2)
    f.pack("WE-BBBBB", total=n_devices)
    f.register_all()
    f.devices(n_devices)
    with CaptureQueriesContext(connection) as ctx:
        report = run_cycle()
    assert len(report.licensed_devices) == n_devices
    with CaptureQueriesContext(connection) as idle:
        run_cycle()
    return len(ctx.captured_queries), len(idle.captured_queries)


@pytest.mark.parametrize("n", [20, 600])
def test_a_sweep_costs_a_few_dozen_queries_and_an_idle_sweep_a_handful(n, settings):
    busy, idle = sweep_queries(n, settings)
    assert busy <= 80, busy
    # refresh from the licensing service, then one check per service (PostgreSQL also turns JIT off)
    assert idle <= 21, idle


def test_thirty_times_the_devices_cost_only_the_bulk_insert_chunks(settings):
    few = sweep_queries(20, settings)
    DeviceLicense.objects.all().delete()
    from devices.models import Device, LicenseWait, RegisteredPack
    from licensing.models import LicenseSlot, PackSizeChange, ProductPack

    LicenseWait.objects.all().delete()
    Device.objects.all().delete()
    LicenseSlot.objects.all().delete()
    RegisteredPack.objects.all().delete()
    PackSizeChange.objects.all().delete()
    ProductPack.objects.all().delete()
    many = sweep_queries(600, settings)
    # The only growth is bulk INSERTs split by the database's parameter limit (SQLite: 999 per
    # statement), far below one query per device; an idle sweep costs the same either way.
    assert many[0] - few[0] <= 600 // 30, (few, many)
    assert many[1] == few[1]


def test_batches_cost_a_bounded_number_of_queries_each(settings):
    settings.ALD_BATCH_SIZE = 100
    f.ald_on()
    f.pack("WE-AAAAA", total=1000)
    f.register_all()
    f.devices(500)
    with CaptureQueriesContext(connection) as ctx:
        run_cycle()
    assert DeviceLicense.objects.count() == 500
    assert len(ctx.captured_queries) <= 20 + 5 * 30, len(ctx.captured_queries)  # 5 batches


def test_the_cycle_collector_is_paused_during_a_cycle_and_back_after(monkeypatch):
    """A cycle pauses Python's cycle collector (it would walk the cycle's rows again and again) and
    turns it back on when the cycle ends, also when the cycle fails."""
    import gc

    from devices import engine

    f.ald_on()
    f.pack("WE-AAAAA", total=3)
    f.register_all()
    f.devices(3)
    seen = []
    real_load = engine.load_pack_states

    def load(today):
        seen.append(gc.isenabled())
        return real_load(today)

    monkeypatch.setattr(engine, "load_pack_states", load)
    assert gc.isenabled()
    assert len(run_cycle().licensed_devices) == 3
    assert seen == [False] and gc.isenabled()

    def broken(today):
        raise RuntimeError("pack states unreadable")

    monkeypatch.setattr(engine, "load_pack_states", broken)
    with pytest.raises(RuntimeError, match="pack states unreadable"):
        run_cycle()
    assert gc.isenabled()
