"""The audit chain: pure verification, storage on both databases, the API and CLI."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.audit.chain import (
    GENESIS,
    Entry,
    record_hash,
    sign_checkpoint,
    verify_chain,
)
from central.audit.log import AuditLog, load_or_create_key, verify_stored
from central.db import make_engine, migrate

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 29, 8, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def chain(n: int) -> list[Entry]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = {
            "seq": seq,
            "ts": T0 + timedelta(seconds=seq),
            "actor": "admin",
            "action": "policy.put",
            "target": "fleet/*",
            "detail": {"v": seq},
        }
        digest = record_hash(prev_hash=prev, **fields)  # type: ignore[arg-type]
        out.append(Entry(prev_hash=prev, hash=digest, **fields))  # type: ignore[arg-type]
        prev = digest
    return out


def test_intact_chain_verifies() -> None:
    entries = chain(6)
    marks = [
        sign_checkpoint(KEY, 3, entries[2].hash),
        sign_checkpoint(KEY, 6, entries[5].hash),
    ]
    assert verify_chain(entries, checkpoints=marks, public_key=KEY.public_key()) is None


def test_changed_removed_reordered_are_named() -> None:
    entries = chain(6)
    changed = list(entries)
    changed[3] = dataclasses.replace(changed[3], detail={"v": 999})
    assert (
        str(verify_chain(changed))
        == "record 4: changed (its hash does not match its content)"
    )
    removed = entries[:2] + entries[3:]
    assert verify_chain(removed).seq == 3  # type: ignore[union-attr]
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    finding = verify_chain(swapped)
    assert finding is not None
    assert finding.seq in (2, 3)


def test_rewritten_chain_fails_its_signed_checkpoint() -> None:
    entries = chain(4)
    mark = sign_checkpoint(KEY, 4, entries[3].hash)
    forged = chain(3)
    forged_tail = chain(4)[3]
    assert verify_chain(forged, checkpoints=[mark]).seq == 4  # type: ignore[union-attr]
    other = sign_checkpoint(Ed25519PrivateKey.generate(), 4, forged_tail.hash)
    finding = verify_chain(chain(4), checkpoints=[other], public_key=KEY.public_key())
    assert finding is not None
    assert "signature" in finding.problem


def test_stored_log_detects_tampering(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    log = AuditLog(engine, KEY, checkpoint_every=3)
    for i in range(7):
        log.append(
            actor="admin",
            action="device.register",
            target=f"cam-{i}",
            detail={"kind": "camera", "n": i},
            now=T0 + timedelta(seconds=i),
        )
    assert log.verify() is None
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE auditrecord SET target = 'cam-x' WHERE seq = 5"))
    assert str(log.verify()).startswith("record 5: changed")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE auditrecord SET target = 'cam-4' WHERE seq = 5"))
        conn.execute(sa.text("DELETE FROM auditrecord WHERE seq = 2"))
    assert log.verify().seq == 2  # type: ignore[union-attr]
    engine.dispose()


def test_concurrent_appends_never_fork(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate(engine)
    log = AuditLog(engine, KEY, checkpoint_every=10)

    def work(who: str) -> None:
        for i in range(10):
            log.append(
                actor=who, action="command.send", target=str(i), now=datetime.now(UTC)
            )

    threads = [threading.Thread(target=work, args=(f"op{t}",)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.seq for r in reversed(log.search(limit=100))] == list(range(1, 41))
    assert verify_stored(engine, KEY) is None


def test_cli_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = make_engine(url)
    migrate(engine)
    log = AuditLog(engine, load_or_create_key(tmp_path), checkpoint_every=2)
    for i in range(3):
        log.append(actor="admin", action="x", now=T0 + timedelta(seconds=i))
    env = {**os.environ, "CENTRAL_DATABASE_URL": url, "CENTRAL_DATA_DIR": str(tmp_path)}
    ok = subprocess.run(
        [sys.executable, "-m", "baling.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stdout.strip()) == (0, "audit log intact")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE auditrecord SET actor = 'mallory' WHERE seq = 2"))
    bad = subprocess.run(
        [sys.executable, "-m", "baling.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "record 2: changed" in bad.stdout
    engine.dispose()
