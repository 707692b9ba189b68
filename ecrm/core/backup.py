"""Online backup and verified restore (`manage.py backup`, `manage.py restore`).

A backup is one tar.gz: `manifest.json` first, then the database (`db.sqlite3`, a consistent copy made
with SQLite's online backup API, or `db.dump`, `pg_dump -Fc` of one snapshot) and the uploaded files
(`files/media/...`, `files/private/...`). The manifest records when, from which code (git commit), the
database vendor, the latest migration per app and the row counts of key tables *as of the snapshot*,
and the sha256 of every member, so a restore can prove it got back exactly what was saved.

A restore goes into an empty directory (and, for PostgreSQL, an empty database) and is verified before
it reports success: checksums, `PRAGMA integrity_check`, migrations and row counts against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "db.sqlite3"
PG_MEMBER = "db.dump"
FILE_ROOTS = {"media": "MEDIA_ROOT", "private": "PRIVATE_FILES_ROOT"}
# Row counts recorded and checked; models of apps that are not installed are skipped.
KEY_MODELS = [
    "core.User", "core.Team", "core.AuditLog", "customers.Customer", "customers.Identity",
    "commerce.Product", "commerce.Order", "commerce.OrderLine", "conversations.Conversation",
    "conversations.Message", "service.Ticket", "service.TicketComment",
]  # fmt: skip
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why, for the operator."""


@dataclass
class RestoreReport:
    """What a restore put where, and what its verification found."""

    target: Path
    manifest: dict[str, Any]
    checks: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- helpers --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _key_tables() -> list[str]:
    tables = []
    for label in KEY_MODELS:
        try:
            tables.append(apps.get_model(label)._meta.db_table)
        except LookupError:
            continue
    return tables


def _count_rows(execute, tables: list[str]) -> dict[str, int]:
    # Table names come from our own models, or from a manifest that must name only those: an archive
    # is outside input, and these names go into SQL.
    known = set(_key_tables())
    unknown = sorted(set(tables) - known)
    if unknown:
        raise BackupError(f"The manifest names tables this version does not count: {', '.join(unknown[:3])}")
    return {t: execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def _git_commit() -> str:
    try:
        cmd = ["git", "rev-parse", "HEAD"]
        out = subprocess.run(cmd, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5)  # noqa: S603, S607
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _latest_migrations(rows) -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in rows:
        # Migration names start with a zero-padded number, so the greatest name is the latest one.
        if name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def _pg_conninfo(db: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries it (so the
    password never shows in a process list)."""
    from psycopg.conninfo import make_conninfo

    params = {"dbname": db["NAME"], "user": db.get("USER") or None, "host": db.get("HOST") or None,
              "port": str(db["PORT"]) if db.get("PORT") else None}  # fmt: skip
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return make_conninfo(**{k: v for k, v in params.items() if v}), env


def _pg_db_from_url(url: str) -> dict[str, Any]:
    import dj_database_url

    db = dj_database_url.parse(url)
    if "postgres" not in db["ENGINE"]:
        raise BackupError("--database-url must be a PostgreSQL URL (postgres://…).")
    return db


# --- backup ---------------------------------------------------------------------------------------


def _snapshot_sqlite(dest: Path) -> tuple[dict[str, str], dict[str, int]]:
    source_path = settings.DATABASES["default"]["NAME"]
    src = sqlite3.connect(source_path, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        # pages=-1: the whole database in one step, under one read transaction: a consistent snapshot,
        # while writers go on (WAL). Copying the file instead could catch a half-written page.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        present = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = _count_rows(dst.execute, [t for t in _key_tables() if t in present])
        migrations = _latest_migrations(dst.execute("SELECT app, name FROM django_migrations"))
    finally:
        src.close()
        dst.close()
    return migrations, counts


def _snapshot_postgres(dest: Path) -> tuple[dict[str, str], dict[str, int]]:
    import psycopg

    conninfo, env = _pg_conninfo(settings.DATABASES["default"])
    with psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as conn:
        # One exported snapshot for pg_dump and for the manifest's counts: both see the same instant.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        cmd = [
            "pg_dump",
            "-Fc",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot}",
            "-f",
            str(dest),
            conninfo,
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)  # noqa: S603, S607
        if out.returncode != 0:
            raise BackupError(f"pg_dump failed: {out.stderr.strip()}")
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        counts = _count_rows(conn.execute, [t for t in _key_tables() if t in present])
        migrations = _latest_migrations(conn.execute("SELECT app, name FROM django_migrations").fetchall())
    return migrations, counts


def _default_output() -> Path:
    return Path(settings.VAR_DIR) / "backups"


def create_backup(output: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write a backup archive and return its path and manifest."""
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {vendor}.")
    now = timezone.now()
    out = Path(output) if output else _default_output()
    if out.is_dir() or str(output or "").endswith("/") or not output:
        out.mkdir(parents=True, exist_ok=True)
        out = out / f"ecrm-{now:%Y%m%d-%H%M%S}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="ecrm-backup-", dir=out.parent) as tmp:
        stage = Path(tmp)
        db_member = SQLITE_MEMBER if vendor == "sqlite" else PG_MEMBER
        snapshot = _snapshot_sqlite if vendor == "sqlite" else _snapshot_postgres
        migrations, counts = snapshot(stage / db_member)
        members = [(db_member, stage / db_member)]
        file_counts = {}
        for name, setting in FILE_ROOTS.items():
            root = Path(getattr(settings, setting))
            copied = 0
            if root.is_dir():
                for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
                    rel = path.relative_to(root).as_posix()
                    staged = stage / "files" / name / rel
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        shutil.copyfile(path, staged)  # a private copy: hashed and archived as one version
                    except FileNotFoundError:
                        continue  # deleted while we walked the tree
                    members.append((f"files/{name}/{rel}", staged))
                    copied += 1
            file_counts[name] = copied
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "app_commit": _git_commit(),
            "db_vendor": vendor,
            "db_member": db_member,
            "migrations": migrations,
            "row_counts": counts,
            "file_counts": file_counts,
            "members": {m: {"sha256": _sha256(p), "size": p.stat().st_size} for m, p in members},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(stage / MANIFEST, arcname=MANIFEST)  # first, so a restore reads it before the rest
            for member, path in members:
                tar.add(path, arcname=member)
        partial.replace(out)  # a crash mid-write never leaves a file that looks like a finished backup
    return out, manifest


# --- restore --------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts or name.startswith("/"):
        raise BackupError(f"Refusing an archive member with an unsafe path: {name!r}")
    return Path(*parts).as_posix()


def _extract(archive: Path, target: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Stream the archive into `target`: manifest first, every member checked against it."""
    placed: dict[str, Path] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST:
                raise BackupError("Not an eCRM backup: the archive does not start with manifest.json.")
            manifest = json.loads(tar.extractfile(first).read())
            if manifest.get("format") != FORMAT:
                raise BackupError(f"Unknown backup format {manifest.get('format')!r}.")
            expected = manifest["members"]
            for member in tar:
                if member.offset == first.offset:
                    continue  # the manifest, read above (iteration starts again from the top)
                name = _safe_name(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BackupError(f"Refusing a link or device in the archive: {name!r}")
                if name not in expected:
                    raise BackupError(f"The archive holds a file the manifest does not list: {name!r}")
                # target/db.sqlite3 (or db.dump), target/media/..., target/private/...
                dest = target / name.removeprefix("files/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with tar.extractfile(member) as src, open(dest, "wb") as fh:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        fh.write(chunk)
                if digest.hexdigest() != expected[name]["sha256"]:
                    raise BackupError(f"Checksum mismatch for {name!r}: the archive is damaged.")
                placed[name] = dest
    except (tarfile.TarError, EOFError, zlib.error, OSError, json.JSONDecodeError, KeyError) as exc:
        raise BackupError(f"The archive is corrupt or truncated ({type(exc).__name__}: {exc}).") from exc
    missing = sorted(set(expected) - set(placed))
    if missing:
        raise BackupError(f"The archive is truncated: {len(missing)} member(s) missing, e.g. {missing[0]!r}.")
    return manifest, placed


def _check_migrations(report: RestoreReport, restored: dict[str, str]) -> None:
    from django.db.migrations.loader import MigrationLoader

    if restored != report.manifest["migrations"]:
        raise BackupError("Restored migrations differ from the manifest's.")
    known = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    unknown = sorted(f"{app}.{name}" for app, name in restored.items() if (app, name) not in known)
    if unknown:
        raise BackupError(
            f"The backup has migrations this code does not know ({', '.join(unknown[:3])}): it was made by "
            "a newer version. Restore it with that version."
        )
    leaves = {}
    for app, name in known:
        if name > leaves.get(app, ""):
            leaves[app] = name
    behind = sorted(app for app, name in leaves.items() if restored.get(app, "") < name)
    report.checks["migrations"] = "ok"
    if behind:
        report.notes.append(
            f"This code has newer migrations for {', '.join(behind)}: run `manage.py migrate`."
        )


def _check_counts(report: RestoreReport, counts: dict[str, int]) -> None:
    expected = report.manifest["row_counts"]
    wrong = {t: (counts.get(t), n) for t, n in expected.items() if counts.get(t) != n}
    if wrong:
        detail = ", ".join(f"{t}: {got} instead of {want}" for t, (got, want) in sorted(wrong.items()))
        raise BackupError(f"Row counts differ from the manifest: {detail}")
    report.checks["row_counts"] = f"ok ({sum(counts.values())} rows in {len(counts)} tables)"


def _verify_sqlite(report: RestoreReport, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"PRAGMA integrity_check failed: {'; '.join(result[:5])}")
        report.checks["integrity"] = "ok"
        if conn.execute("PRAGMA foreign_key_check").fetchall():
            raise BackupError("PRAGMA foreign_key_check found rows pointing at missing rows.")
        report.checks["foreign_keys"] = "ok"
        migrations = _latest_migrations(conn.execute("SELECT app, name FROM django_migrations"))
        counts = _count_rows(conn.execute, list(report.manifest["row_counts"]))
    finally:
        conn.close()
    _check_migrations(report, migrations)
    _check_counts(report, counts)


def _restore_postgres(report: RestoreReport, dump: Path, database_url: str) -> None:
    import psycopg

    conninfo, env = _pg_conninfo(_pg_db_from_url(database_url))
    with psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True) as conn:
        tables = conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    if tables:
        raise BackupError(
            f"The target database is not empty ({tables} tables): restore into an empty database."
        )
    cmd = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", conninfo, str(dump)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)  # noqa: S603, S607
    if out.returncode != 0:
        raise BackupError(f"pg_restore failed: {out.stderr.strip()}")
    report.checks["pg_restore"] = "ok"
    with psycopg.connect(conninfo, password=env.get("PGPASSWORD")) as conn:
        migrations = _latest_migrations(conn.execute("SELECT app, name FROM django_migrations").fetchall())
        counts = _count_rows(conn.execute, list(report.manifest["row_counts"]))
    _check_migrations(report, migrations)
    _check_counts(report, counts)


def restore_backup(archive: str | Path, *, target: str | Path, database_url: str = "") -> RestoreReport:
    """Restore `archive` into the empty directory `target` (and the empty database `database_url` for a
    PostgreSQL backup), then verify it. Raises BackupError on anything short of a verified restore."""
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise BackupError(f"No such backup archive: {archive}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"The target {target} is not an empty directory; restore needs an empty one.")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            manifest = json.loads(tar.extractfile(first).read()) if first and first.name == MANIFEST else {}
    except (tarfile.TarError, EOFError, zlib.error, OSError, json.JSONDecodeError) as exc:
        raise BackupError(f"The archive is corrupt or truncated ({type(exc).__name__}: {exc}).") from exc
    vendor = manifest.get("db_vendor")
    if not vendor:
        raise BackupError("Not an eCRM backup: the archive does not start with manifest.json.")
    if vendor == "postgresql" and not database_url:
        raise BackupError(
            "This is a PostgreSQL backup: give the empty database to restore into with --database-url."
        )
    if vendor == "sqlite" and database_url:
        raise BackupError("This is a SQLite backup: it restores into --target only, not into --database-url.")
    if database_url:
        _pg_db_from_url(database_url)  # refuse a non-PostgreSQL URL before writing anything
    target.mkdir(parents=True, exist_ok=True)
    manifest, placed = _extract(archive, target)
    report = RestoreReport(target=target, manifest=manifest)
    report.checks["checksums"] = f"ok ({len(placed)} members)"
    if vendor == "sqlite":
        _verify_sqlite(report, placed[SQLITE_MEMBER])
    else:
        _restore_postgres(report, placed[PG_MEMBER], database_url)
    return report


def archive_summary(path: Path) -> str:
    size = path.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
