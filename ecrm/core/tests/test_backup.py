"""Backup under write load, restore into an empty place, and a smoke test of the restored instance; and the
clear refusals: corrupt or truncated archive, wrong vendor, non-empty target."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ecrm.core.backup import BackupError, restore_backup

from .procs import ROOT, Instance, pg_recreate, pg_url

# Customers and orders written through the services, one pair per loop, until the stop file appears.
LOAD = """
import itertools, os
from decimal import Decimal
from django.utils import timezone
from ecrm.customers.services import do_upsert_customer
from ecrm.commerce.services import do_upsert_order
for i in itertools.count():
    if os.path.exists(os.environ['ECRM_TEST_STOP_FILE']):
        break
    r = do_upsert_customer(traits={"email": f"load{i}@example.com", "first_name": "Load"}, actor=None, source="load")
    do_upsert_order(external_id=f"L{i}", placed_at=timezone.now(), total=Decimal("10.00"), currency="EUR",
                    actor=None, customer=r.customer, lines=[{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}])
"""
SMOKE = """
from ecrm.customers.models import Customer
from ecrm.commerce.models import Order, OrderLine
from ecrm.core.models import User
orphans = Order.objects.filter(customer__isnull=True).count() + Order.objects.filter(lines__isnull=True).count()
print(Customer.objects.count(), Order.objects.count(), OrderLine.objects.count(), orphans,
      User.objects.filter(username="admin").exists())
"""


def _counts(inst: Instance) -> tuple[int, int]:
    return (
        inst.query("SELECT COUNT(*) FROM customers_customer")[0][0],
        inst.query("SELECT COUNT(*) FROM commerce_order")[0][0],
    )


def _backup_under_load(inst: Instance) -> tuple[Path, dict, tuple[int, int], tuple[int, int]]:
    inst.manage("migrate", "-v", "0")
    inst.shell("from ecrm.core.demo import ensure_demo_users; ensure_demo_users()")
    (inst.dir / "media" / "avatars").mkdir(parents=True)
    (inst.dir / "media" / "avatars" / "li.png").write_bytes(b"\x89PNG fake avatar " * 100)
    (inst.dir / "private").mkdir()
    (inst.dir / "private" / "mail-attachment.pdf").write_bytes(b"%PDF-1.4 invoice")
    stop = inst.dir / "stop-load"
    load = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", LOAD], cwd=ROOT,
        env={**inst.env, "ECRM_TEST_STOP_FILE": str(stop)},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        inst.wait_for(lambda: _counts(inst)[1] >= 30, timeout=60, what="the write load to get going")
        before = _counts(inst)
        out = inst.manage("backup", "--output", str(inst.dir / "backups") + "/")
        after = _counts(inst)
        assert load.poll() is None, "the write load stopped during the backup"
    finally:
        stop.touch()
        _, err = load.communicate(timeout=60)
    assert load.returncode == 0, err
    archive = Path(out.stdout.strip().splitlines()[-1].split()[0])
    assert archive.is_file() and archive.name.endswith(".tar.gz")
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
    assert after[1] > before[1], "no writes happened while the backup ran"
    return archive, manifest, before, after


MANIFEST = "manifest.json"


def _check_manifest(manifest: dict, vendor: str, before, after) -> None:
    assert manifest["db_vendor"] == vendor
    counts = manifest["row_counts"]
    # A snapshot from inside the backup's window: everything committed before it began, nothing after.
    assert before[0] <= counts["customers_customer"] <= after[0]
    assert before[1] <= counts["commerce_order"] <= after[1]
    assert counts["commerce_orderline"] == counts["commerce_order"]  # no order without its line
    assert manifest["migrations"]["core"] == "0003_job_claim"
    assert set(manifest["members"]) >= {"files/media/avatars/li.png", "files/private/mail-attachment.pdf"}
    assert all(len(m["sha256"]) == 64 for m in manifest["members"].values())


def _smoke(restored: Instance, manifest: dict) -> None:
    restored.manage("check", "--deploy", "--fail-level", "CRITICAL")
    assert "No planned migration operations" in restored.manage("migrate", "--plan").stdout
    customers, orders, lines, orphans, admin = restored.shell(SMOKE).split()
    counts = manifest["row_counts"]
    assert (int(customers), int(orders), int(lines)) == (
        counts["customers_customer"], counts["commerce_order"], counts["commerce_orderline"],
    )  # fmt: skip
    assert orphans == "0" and admin == "True"


@pytest.mark.slow
def test_sqlite_backup_under_write_load_restores_and_passes_a_smoke_test(tmp_path):
    inst = Instance(tmp_path / "live")
    (tmp_path / "live").mkdir()
    archive, manifest, before, after = _backup_under_load(inst)
    _check_manifest(manifest, "sqlite", before, after)

    target = tmp_path / "restored"
    out = inst.manage("restore", str(archive), "--target", str(target))
    assert "integrity: ok" in out.stdout and "Verified." in out.stdout
    assert (target / "media" / "avatars" / "li.png").read_bytes() == b"\x89PNG fake avatar " * 100
    assert (target / "private" / "mail-attachment.pdf").read_bytes() == b"%PDF-1.4 invoice"
    _smoke(Instance(target), manifest)  # the restored directory is a whole instance: db + files


@pytest.mark.slow
def test_postgresql_backup_under_write_load_restores_into_an_empty_database(tmp_path):
    (tmp_path / "live").mkdir()
    inst = Instance(tmp_path / "live", database_url=pg_recreate("h_d4"))
    archive, manifest, before, after = _backup_under_load(inst)
    _check_manifest(manifest, "postgresql", before, after)
    assert "db.dump" in manifest["members"]

    url = pg_recreate("h_d2")
    target = tmp_path / "restored"
    out = inst.manage("restore", str(archive), "--target", str(target), "--database-url", url)
    assert "pg_restore: ok" in out.stdout and "Verified." in out.stdout
    assert (target / "private" / "mail-attachment.pdf").read_bytes() == b"%PDF-1.4 invoice"
    _smoke(Instance(target, database_url=url), manifest)
    # Not into a database that already has tables.
    again = inst.manage(
        "restore", str(archive), "--target", str(tmp_path / "t2"), "--database-url", url, check=False
    )
    assert again.returncode != 0 and "not empty" in again.stderr
    assert pg_url("h_d2") == url


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory) -> tuple[Instance, Path]:
    live = tmp_path_factory.mktemp("small")
    inst = Instance(live)
    inst.manage("migrate", "-v", "0")
    (live / "media").mkdir()
    (live / "media" / "a.txt").write_text("hello")
    out = inst.manage("backup", "--output", str(live / "b.tar.gz"))
    assert "b.tar.gz" in out.stdout
    return inst, live / "b.tar.gz"


def _refused(archive: Path, target: Path, **kw) -> str:
    with pytest.raises(BackupError) as exc:
        restore_backup(archive, target=target, **kw)
    return str(exc.value)


@pytest.mark.slow
def test_restore_refuses_non_empty_target_wrong_vendor_and_damaged_archives(small_backup, tmp_path):
    inst, archive = small_backup
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    out = inst.manage("restore", str(archive), "--target", str(busy), check=False)  # as an operator sees it
    assert out.returncode == 1 and "not an empty directory" in out.stderr
    assert [p.name for p in busy.iterdir()] == ["keep.txt"] and (busy / "keep.txt").read_text() == "mine"

    wrong = _refused(archive, tmp_path / "x", database_url=pg_url("h_d3"))
    assert "SQLite backup" in wrong and not (tmp_path / "x").exists()

    data = archive.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    assert "corrupt or truncated" in _refused(truncated, tmp_path / "t1")

    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a backup at all" * 50)
    assert "corrupt or truncated" in _refused(garbage, tmp_path / "t2")

    # A member changed after the backup: the checksum catches it.
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src:
            body = src.extractfile(member).read()
            if member.name == "files/media/a.txt":
                body = b"HELLO"
                member.size = len(body)
            dst.addfile(member, fileobj=io.BytesIO(body))
    assert "Checksum mismatch" in _refused(tampered, tmp_path / "t3")

    # A valid tar.gz that is not ours, and one whose member escapes the target.
    for name, expected in (("readme.txt", "Not an eCRM backup"), ("manifest.json", "Not an eCRM backup")):
        other = tmp_path / f"other-{name}.tar.gz"
        with gzip.open(other, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
        assert expected in _refused(other, tmp_path / f"t-{name}")
    escaping = tmp_path / "escaping.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(escaping, "w:gz") as dst:
        first = src.next()
        dst.addfile(first, src.extractfile(first))
        evil = tarfile.TarInfo("../evil.txt")
        evil.size = 4
        dst.addfile(evil, io.BytesIO(b"evil"))
    assert "unsafe path" in _refused(escaping, tmp_path / "t5")
    assert not (tmp_path / "evil.txt").exists()
