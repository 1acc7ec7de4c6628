import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

PROC = Path("/proc")


class Signals:
    """Counts the stop signals received. The handler only counts: an exception raised wherever a
    signal happens to land (inside ``Popen.poll``, holding its lock) could leave a child unwaitable."""

    STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.received = []
        for signum in self.STOP:
            signal.signal(signum, self._count)

    def _count(self, signum, frame):
        self.received.append(signum)

    def interrupts(self) -> int:
        return self.received.count(signal.SIGINT)


class Command(BaseCommand):
    help = "Start the web server and the queue worker together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, addr, **options):
        manage = [sys.executable, "manage.py"]
        # Each child leads a process group of its own, and every stop goes to the whole group: the
        # queue worker's sentinel and worker processes outlive a qcluster that is killed, and would
        # go on taking tasks with nobody to stop them.
        procs = {
            "web server": subprocess.Popen(
                manage + ["runserver", addr, "--noreload"], start_new_session=True
            ),
            "queue worker": subprocess.Popen(manage + ["qcluster"], start_new_session=True),
        }

        signals = Signals()
        self.stdout.write(f"ALD Portal on http://{addr}/ with the queue worker. Ctrl-C stops both.")
        password_file = settings.VAR_DIR / "admin-password.txt"
        if password_file.exists():
            self.stdout.write(f"Log in as admin; the password is in {password_file}.")
        while not signals.received and all(p.poll() is None for p in procs.values()):
            time.sleep(0.3)
        # Ctrl-C, or a signal for this process (the children are in groups of their own); a further
        # SIGTERM/SIGHUP (make passes one on) does not cut the shutdown short, a second Ctrl-C does
        asked = bool(signals.received)
        interrupts = signals.interrupts()
        if not asked:
            for name, p in procs.items():
                if p.poll() is not None:
                    self.stderr.write(f"The {name} stopped (exit status {p.returncode}); stopping the other.")
        for p in procs.values():
            if p.poll() is None:
                # The leader stops what it started (both stop cleanly on SIGTERM, even where SIGINT
                # is ignored); a signal to each process of the queue worker would make it hang.
                p.terminate()
            else:
                signal_group(p, signal.SIGTERM)  # its leader is gone: nobody else will stop them
        self._wait(procs, 20, lambda: signals.interrupts() > interrupts)

    def _wait(self, procs, seconds, hurry):
        """Wait until no process of either group is left; past ``seconds``, or when ``hurry()`` (a
        second Ctrl-C), end what is left."""
        deadline = time.monotonic() + seconds
        while not hurry():
            left = [name for name, p in procs.items() if p.poll() is None or group_alive(p)]
            if not left:
                break
            if time.monotonic() > deadline:
                for name in left:
                    self.stderr.write(f"The {name} did not stop in time; ending it.")
                break
            time.sleep(0.1)
        for p in procs.values():
            signal_group(p, signal.SIGKILL)
            p.wait()
        self.stdout.write("Stopped the web server and the queue worker.")
        for signum in Signals.STOP:  # all stopped: a late Ctrl-C must not turn the exit into a kill
            signal.signal(signum, signal.SIG_IGN)


def signal_group(proc, signum):
    """Send ``signum`` to the process group ``proc`` leads (it may outlive its leader)."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def group_alive(proc) -> bool:
    """Whether a process of the group still runs. Where /proc shows them, a zombie does not count:
    an orphan that has exited waits for init to reap it, which a container's init may never do."""
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    if not PROC.is_dir():
        return True
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if pgrp == str(proc.pid) and state != "Z":
            return True
    return False
