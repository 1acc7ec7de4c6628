"""The benchmark command runs end to end on a tiny fleet and prints the JSON it promises.

It makes its own SQLite file (whatever database the suite runs on) and starts a real qcluster for
the latency part; the numbers are small-N numbers, so only their shape and plain facts are checked."""

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def test_bench_prints_measurements_and_the_targets_with_whether_each_is_met():
    run = subprocess.run(
        [
            sys.executable,
            "bench/ald_bench.py",
            "--devices",
            "300",
            "--baseline-devices",
            "40",
            "--latency-samples",
            "3",
            "--page-repeats",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)

    assert out["profile"] == "embedded" and out["machine"]["database"].startswith("sqlite")
    assert out["devices"] == out["licenses"] == 300
    assert out["raw_insert"]["rows"] == 300 and out["raw_insert"]["seconds"] > 0
    full = out["full_ald"]
    assert (full["licensed"], full["waiting"]) == (300, 0)
    assert full["seconds"] > 0  # (devices per second comes from the unrounded time)
    # the time is rounded to 0.01 s, the rate comes from the unrounded one
    assert (
        300 / (full["seconds"] + 0.005) - 1
        <= full["devices_per_second"]
        <= 300 / (full["seconds"] - 0.005) + 1
    )
    assert full["ratio_to_raw_insert"] > 1  # ALD writes more than one plain row per device
    assert out["idle_sweep"]["licensed"] == 0  # nothing left to do
    base = out["baseline_one_by_one"]
    assert (base["devices"], base["licensed"], base["extrapolated"]) == (40, 40, True)
    assert out["latency"]["samples"] == 3
    assert 0 < out["latency"]["p50_seconds"] <= out["latency"]["p95_seconds"] <= out["latency"]["max_seconds"]
    assert set(out["pages"]) == {"dashboard", "device_list", "pack_list"}
    for page in out["pages"].values():
        assert page["queries"] > 0 and 0 < page["p50_ms"] <= page["p95_ms"]
    assert 0 < out["peak_memory_mb"] < 24 * 1024

    names = [t["name"] for t in out["targets"]]
    assert names[:3] == ["full licensing", "full licensing vs raw insert", "idle sweep"]
    ratio = next(t for t in out["targets"] if t["name"] == "full licensing vs raw insert")
    assert ratio["measured"] == full["ratio_to_raw_insert"] and ratio["met"] == (ratio["measured"] <= 5)
    assert out["all_targets_met"] == all(t["met"] for t in out["targets"])
    assert "targets_note" in out  # 300 devices is not the size the targets are set for
