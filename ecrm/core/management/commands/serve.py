"""Start everything on one machine: the ASGI server (console, API, WebSockets) and the worker.

On the first start (no users yet) it creates the demo cast and seeds demo data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.models import User


class Command(BaseCommand):
    help = "Run the web console, API, realtime server and background worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args, host, port, workers, no_seed, **options):
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
        worker = subprocess.Popen([sys.executable, "manage.py", "run_huey", "--quiet"], env=env)  # noqa: S603
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
        ]
        web = subprocess.Popen(web_cmd, env=env)  # noqa: S603
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\n  eCRM is running at {url}"))
        self.stdout.write(
            f"  Sign in as admin / {DEMO_PASSWORD}  (also: manager, agent_li, agent_bob, marketer, analyst)"
        )
        self.stdout.write(f"  API docs: {url}api/docs    Press Ctrl+C to stop.\n")

        def stop(*_):
            for proc in (web, worker):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)  # graceful: the worker finishes its running jobs

        signal.signal(signal.SIGTERM, stop)
        try:
            while True:
                for proc in (web, worker):
                    if proc.poll() is not None:
                        stop()
                        raise SystemExit(proc.returncode or 0)
                try:
                    web.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            stop()
        finally:
            for proc in (web, worker):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
