"""Start everything on one machine: the ASGI server (console, API, WebSockets) and the worker.

On the first start (no users yet) it creates the demo cast and seeds demo data.

SIGTERM or SIGINT (Ctrl+C) shuts down gracefully: the web server stops taking requests, the worker stops
taking jobs and gets `--grace` seconds to finish the ones it is running; what it cannot finish is returned
to the queue through the job ledger (core/jobs.py), so the next start runs it, exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.models import User


class Command(BaseCommand):
    help = "Run the web console, API, realtime server and background worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument("--no-seed", action="store_true")
        parser.add_argument(
            "--grace",
            type=float,
            default=float(os.environ.get("ECRM_WORKER_GRACE", "25")),
            help="Seconds running jobs get to finish on shutdown before they are returned to the queue.",
        )

    def handle(self, *args, host, port, workers, no_seed, grace, **options):
        if workers > 1 and not settings.REDIS_URL:
            # without Redis the cache (chat presence, rate limits, login throttling) is per process
            raise CommandError("More than one web worker needs REDIS_URL (a cache the processes share).")
        if not User.objects.exists():
            ensure_demo_users()
            if not no_seed:
                self.stdout.write(f"First start: seeding {settings.ECRM_DEMO_CUSTOMERS} demo customers…")
                call_command("seed", customers=settings.ECRM_DEMO_CUSTOMERS)
                self.stdout.write("Seeding the demo contact center (help articles, conversations, tickets)…")
                call_command("seed_contact_center")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.base"),
        }
        # Own process groups: a Ctrl+C in the terminal reaches only this process, which then stops the
        # children once and in order (a second SIGINT would cut the worker's graceful shutdown short).
        worker_cmd = [sys.executable, "manage.py", "run_huey", "--quiet", "--shutdown-timeout", str(grace)]
        worker = subprocess.Popen(worker_cmd, env=env, process_group=0)  # noqa: S603
        web_cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            str(int(grace)),
        ]
        web = subprocess.Popen(web_cmd, env=env, process_group=0)  # noqa: S603
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\n  eCRM is running at {url}"))
        self.stdout.write(
            f"  Sign in as admin / {DEMO_PASSWORD}  (also: manager, agent_li, agent_bob, marketer, analyst)"
        )
        self.stdout.write(f"  API docs: {url}api/docs    Press Ctrl+C to stop.\n")

        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        exit_code = 0
        while not stopping.is_set():
            for proc in (web, worker):
                if proc.poll() is not None:
                    exit_code = proc.returncode or 0
                    stopping.set()
            stopping.wait(0.5)
        raise SystemExit(self.shut_down(web, worker, grace) or exit_code)

    def shut_down(self, web: subprocess.Popen, worker: subprocess.Popen, grace: float) -> int:
        """Stop both children gracefully, then return the jobs a dead worker left behind to the queue."""
        self.stdout.write(f"Shutting down: running jobs get {grace:g} s to finish…")
        for proc in (web, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # graceful for both uvicorn and the Huey consumer
        code = 0
        # The worker's own deadline is `grace`; after that it returns unfinished jobs and exits. Give
        # it a margin for that, then kill it: the ledger recovery below covers a killed worker too.
        for proc, limit in ((worker, grace + 15), (web, grace + 5)):
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = 1
        from ecrm.core.jobs import recover_orphaned_jobs

        recovered = recover_orphaned_jobs()
        if recovered:
            self.stdout.write(f"Returned {len(recovered)} unfinished job(s) to the queue for the next start.")
        self.stdout.write("Stopped.")
        return code
