"""The embedded queue's SQLite file: WAL with synchronous=NORMAL, and jobs survive a reopen."""

from __future__ import annotations

from ecrm.core.queue import EcrmSqliteHuey


def test_the_queue_file_is_wal_with_normal_sync_and_keeps_jobs_across_a_reopen(tmp_path):
    path = str(tmp_path / "tasks.sqlite3")
    huey = EcrmSqliteHuey("t", filename=path)

    @huey.task()
    def double(x):
        return 2 * x

    for i in range(3):
        double(i)
    conn = huey.storage.conn
    assert conn.execute("pragma synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("pragma journal_mode").fetchone() == ("wal",)
    reopened = EcrmSqliteHuey("t", filename=path)
    assert reopened.pending_count() == 3
