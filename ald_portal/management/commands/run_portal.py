import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and the queue worker together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, addr, **options):
        manage = [sys.executable, "manage.py"]
        procs = [
            subprocess.Popen(manage + ["runserver", addr, "--noreload"]),
            subprocess.Popen(manage + ["qcluster"]),
        ]
        self.stdout.write(f"ALD Portal on http://{addr}/ with the queue worker. Ctrl-C stops both.")
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT if os.name != "nt" else signal.CTRL_C_EVENT)
            deadline = time.time() + 15
            for p in procs:
                try:
                    p.wait(timeout=max(deadline - time.time(), 0.1))
                except subprocess.TimeoutExpired:
                    p.kill()
        failed = [p for p in procs if p.returncode not in (0, -signal.SIGINT, None)]
        if failed and not any(p.returncode == -signal.SIGINT for p in procs):
            raise SystemExit(1)
