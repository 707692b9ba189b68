"""The batch write path on a SQLite *file* (the embedded default in production): warm connections,
the writer queue and the WAL checkpoint only switch on there, not on the in-memory test database.
Two processes with four threads each send overlapping batches; every event id is stored exactly once
and every answer says correctly whether it was new or a duplicate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SENDER = r"""
import json, threading
import datetime as dt
from ecrm.ingest.services import do_ingest_batch
from ecrm.core.models import ApiKey
from ecrm.customers.models import Customer
from django.db import connection

now = dt.datetime.now(dt.UTC).isoformat()
key = ApiKey.objects.get(name="bench")
results = {"ok": 0, "duplicate": 0, "error": 0}
lock = threading.Lock()

def send(thread_no):
    for batch_no in range(3):
        # ids overlap across threads and processes on purpose: 0..299 is sent 24 times in all
        items = [{"type": "track", "event_id": f"ev-{i}", "name": "Viewed a page", "anonymous_id": f"a{i % 50}",
                  "email": f"buyer{i % 20}@example.com" if i % 2 else None, "occurred_at": now}
                 for i in range(batch_no * 100, batch_no * 100 + 300)]
        outcome = do_ingest_batch(items=items, actor=key)
        with lock:
            for r in outcome.results:
                results[r.status] += 1
    connection.close()

threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print("RESULT " + json.dumps(results))
"""

COUNT = "from ecrm.ingest.models import Event; print('COUNT', Event.objects.count(), Event.objects.values('event_id').distinct().count(), Event.objects.filter(customer__isnull=False).count())"


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_concurrent_batches_on_a_sqlite_file_store_each_event_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        HUEY_SQLITE_PATH=str(tmp_path / "tasks.sqlite3"),
        ECRM_VAR_DIR=str(tmp_path),
    )
    assert _manage(env, "migrate", "-v", "0").returncode == 0
    assert _manage(env, "create_api_key", "--name", "bench", "--scope", "write").returncode == 0
    senders = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", SENDER],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(2)
    ]  # fmt: skip
    totals = {"ok": 0, "duplicate": 0, "error": 0}
    for proc in senders:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        for status, n in json.loads(line[len("RESULT ") :]).items():
            totals[status] += n
    # 2 processes x 4 threads x 3 batches x 300 items; the distinct ids are ev-0 .. ev-499.
    assert totals == {"ok": 500, "duplicate": 2 * 4 * 3 * 300 - 500, "error": 0}
    count = _manage(env, "shell", "-v", "0", "-c", COUNT).stdout.split()
    assert count[:3] == ["COUNT", "500", "500"]
    assert int(count[3]) == 250  # the odd ids carry an email, so they belong to a customer
