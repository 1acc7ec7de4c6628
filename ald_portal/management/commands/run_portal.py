import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Stop(Exception):
    pass


class Command(BaseCommand):
    help = "Start the web server and the queue worker together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, addr, **options):
        manage = [sys.executable, "manage.py"]
        procs = {
            "web server": subprocess.Popen(manage + ["runserver", addr, "--noreload"]),
            "queue worker": subprocess.Popen(manage + ["qcluster"]),
        }

        def stop_signal(signum, frame):
            raise Stop(signum)

        signal.signal(signal.SIGTERM, stop_signal)
        signal.signal(signal.SIGHUP, stop_signal)
        self.stdout.write(f"ALD Portal on http://{addr}/ with the queue worker. Ctrl-C stops both.")
        password_file = settings.VAR_DIR / "admin-password.txt"
        if password_file.exists():
            self.stdout.write(f"Log in as admin; the password is in {password_file}.")
        interrupted = forward = False
        try:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.3)
        except KeyboardInterrupt:
            # Ctrl-C in a terminal reaches the whole process group: the children have their SIGINT
            # already, and a second one makes the queue worker hang while it stops.
            interrupted = True
        except Stop:
            forward = True  # a signal for this process alone: pass the stop on, once
        # from here on a further SIGTERM/SIGHUP (make passes one on) must not cut the shutdown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for name, p in procs.items():
            if p.poll() is not None and not (interrupted or forward):
                self.stderr.write(f"The {name} stopped (exit status {p.returncode}); stopping the other.")
        for p in procs.values():
            # Ctrl-C already reached children of our process group; everything else is told here
            if p.poll() is None and (not interrupted or os.getpgid(p.pid) != os.getpgrp()):
                p.terminate()  # both stop cleanly on SIGTERM, even where SIGINT is ignored
        try:
            self._wait(procs, 20)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()

    def _wait(self, procs, seconds):
        deadline = time.time() + seconds
        for name, p in procs.items():
            while p.poll() is None:
                try:
                    p.wait(timeout=max(deadline - time.time(), 0.1))
                except subprocess.TimeoutExpired:
                    self.stderr.write(f"The {name} did not stop in time; ending it.")
                    p.kill()
                except KeyboardInterrupt:  # a second Ctrl-C: stop at once
                    for q in procs.values():
                        if q.poll() is None:
                            q.kill()
        self.stdout.write("Stopped the web server and the queue worker.")
