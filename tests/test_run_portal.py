"""`manage.py run_portal` (what `make run` starts): the web server and the queue worker live and stop
together. A signal stops both; when one of them dies, the other is stopped too, never left running."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def group(pgid):
    """The running (not zombie) processes of a process group."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if line.split() and not line.split()[1].startswith("Z")
    ]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waits for its parent to reap it: it no longer runs
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(state.strip()) and not state.strip().startswith("Z")


@pytest.fixture
def portal(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}", ALD_VAR_DIR=str(tmp_path))
    env["Q_CLUSTER_NAME"] = f"ald-run-portal-{os.getpid()}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_portal", "--addr", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, (
                proc.stdout.read() if proc.poll() else "no answer"
            )
            time.sleep(0.3)
    kids = children(proc.pid)
    assert len(kids) == 2
    # the queue worker's own processes (sentinel, workers, monitor) are up once its group has several
    while len(group(kids[1])) < 3:
        assert time.time() < deadline, "the queue worker started no processes"
        time.sleep(0.3)
    try:
        yield proc, kids
    finally:
        for pgid in [proc.pid, *kids]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_when_the_queue_worker_dies_the_web_server_is_stopped_too(portal):
    proc, (web, worker) = portal
    os.kill(worker, signal.SIGKILL)  # the qcluster process only: its sentinel and workers run on
    output, _ = proc.communicate(timeout=40)  # returns once no process holds the output open
    assert proc.returncode == 0
    assert "The queue worker stopped (exit status -9); stopping the other." in output
    assert "Traceback" not in output
    assert not alive(web)
    assert group(worker) == [] and group(web) == []


def test_a_second_sigterm_during_the_shutdown_does_not_orphan_a_child(portal):
    proc, kids = portal
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)  # as make passes one on
    output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0
    assert "Traceback" not in output
    assert "Stopped the web server and the queue worker." in output
    assert not any(alive(pid) for pid in kids)
    assert all(group(pid) == [] for pid in kids)


def test_ctrl_c_stops_both_and_everything_they_started(portal):
    """Ctrl-C in a terminal sends SIGINT to run_portal's process group (the children lead their own)."""
    proc, kids = portal
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0
    assert "Traceback" not in output
    assert "did not stop in time" not in output
    assert all(group(pid) == [] for pid in kids)


def test_a_burst_of_ctrl_c_stops_both_without_a_traceback(portal):
    """Ctrl-C pressed again and again: the signals only count, so none lands as an exception in the
    middle of the shutdown (inside a wait for a child, say) and leaves a child running or unreaped."""
    proc, kids = portal
    for _ in range(6):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "Stopped the web server and the queue worker." in output
    assert all(group(pid) == [] for pid in kids)
