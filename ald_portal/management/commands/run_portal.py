import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

PROC = Path("/proc")


class Stop(Exception):
    pass


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

        def stop_signal(signum, frame):
            raise Stop(signum)

        signal.signal(signal.SIGTERM, stop_signal)
        signal.signal(signal.SIGHUP, stop_signal)
        self.stdout.write(f"ALD Portal on http://{addr}/ with the queue worker. Ctrl-C stops both.")
        password_file = settings.VAR_DIR / "admin-password.txt"
        if password_file.exists():
            self.stdout.write(f"Log in as admin; the password is in {password_file}.")
        asked = False
        try:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.3)
        except (KeyboardInterrupt, Stop):
            asked = True  # Ctrl-C, or a signal for this process: the children are in groups of their own
        # from here on a further SIGTERM/SIGHUP (make passes one on) must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
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
        self._wait(procs, 20)

    def _wait(self, procs, seconds):
        """Wait until no process of either group is left; past ``seconds``, or at a second Ctrl-C,
        end what is left."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                left = [name for name, p in procs.items() if p.poll() is None or group_alive(p)]
                if not left:
                    break
                if time.monotonic() > deadline:
                    for name in left:
                        self.stderr.write(f"The {name} did not stop in time; ending it.")
                    break
                time.sleep(0.1)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once
            pass
        finally:
            for p in procs.values():
                signal_group(p, signal.SIGKILL)
                p.wait()
        self.stdout.write("Stopped the web server and the queue worker.")


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
