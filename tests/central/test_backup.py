"""Backup, then restore into an empty data directory and database: nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session

from central.audit.log import AuditLog, load_or_create_key, verify_stored
from central.backup import backup, restore
from central.db import make_engine, migrate
from central.errors import ConflictError
from central.fleet import registry
from central.operators.auth import authenticate, create_operator
from provisioning.ca import FleetCA

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 29, 8, tzinfo=UTC)
PASSWORD = "correct horse battery"


def test_restore_into_an_empty_place_passes_audit_verify(
    tmp_path: Path, db_url: str
) -> None:
    src_dir = tmp_path / "src"
    src = make_engine(f"sqlite:///{tmp_path / 'src.sqlite3'}")
    migrate(src)
    ca = FleetCA.create(src_dir / "ca", now=T0)
    log = AuditLog(src, load_or_create_key(src_dir), checkpoint_every=2)
    with Session(src) as s:
        create_operator(s, username="admin", password=PASSWORD, role="admin", now=T0)
        registry.register(s, device_id="cam-1", kind="camera", site="rjw", now=T0)
    for i in range(5):
        log.append(
            actor="admin",
            action="policy.put",
            target="fleet/*",
            detail={"v": i, "名": "岳阳"},
            now=T0 + timedelta(seconds=i),
        )
    archive = tmp_path / "central.tar.gz"
    counts = backup(src, src_dir, archive)
    assert counts["auditrecord"] == 5
    assert counts["auditcheckpoint"] == 2

    dest_dir = tmp_path / "dest"
    dest = make_engine(db_url)
    restored = restore(dest, dest_dir, archive)
    assert restored == counts
    assert verify_stored(dest, load_or_create_key(dest_dir)) is None
    assert FleetCA.load(dest_dir / "ca").root == ca.root
    with Session(dest) as s:
        assert authenticate(s, "admin", PASSWORD).role == "admin"
        assert registry.get(s, "cam-1").site == "rjw"
    AuditLog(dest, load_or_create_key(dest_dir)).append(
        actor="admin", action="after", now=T0 + timedelta(hours=1)
    )
    assert verify_stored(dest, load_or_create_key(dest_dir)) is None
    with pytest.raises(ConflictError, match="expected an empty database"):
        restore(dest, dest_dir, archive)
    src.dispose()
    dest.dispose()


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    AuditLog(engine, load_or_create_key(tmp_path / "a")).append(
        actor="x", action="y", now=T0
    )
    env = {
        **os.environ,
        "CENTRAL_DATABASE_URL": url,
        "CENTRAL_DATA_DIR": str(tmp_path / "a"),
    }
    out = tmp_path / "b.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "baling.cli", "backup", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "auditrecord 1" in done.stdout
    env2 = {
        **os.environ,
        "CENTRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
        "CENTRAL_DATA_DIR": str(tmp_path / "c"),
    }
    back = subprocess.run(
        [sys.executable, "-m", "baling.cli", "restore", str(out)],
        env=env2,
        capture_output=True,
        text=True,
        check=False,
    )
    assert back.returncode == 0, back.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "baling.cli", "audit", "verify"],
        env=env2,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.stdout.strip() == "audit log intact"
    again = subprocess.run(
        [sys.executable, "-m", "baling.cli", "restore", str(out)],
        env=env2,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    engine.dispose()
