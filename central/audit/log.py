"""The audit log's storage: append, list, verify, and the checkpoint key.

Appends run in their own transaction; two writers racing for the same
sequence number collide on the primary key and the loser retries, so the
chain never forks. Every ``checkpoint_every`` records the head is signed
with central's audit key (Ed25519, ``<data_dir>/audit-signing.key``).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, col, select

from central.audit.chain import (
    GENESIS,
    Entry,
    Finding,
    record_hash,
    sign_checkpoint,
    verify_chain,
)
from central.audit.chain import Checkpoint as SignedCheckpoint
from central.errors import ConfigError
from central.models import AuditCheckpoint, AuditRecord, as_utc

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

logger = logging.getLogger(__name__)

KEY_FILE = "audit-signing.key"


def load_or_create_key(data_dir: Path, name: str = KEY_FILE) -> Ed25519PrivateKey:
    """An Ed25519 key of central's in ``data_dir``, made on first use (mode 0600).

    Raises:
        ConfigError: the file exists but is not an Ed25519 private key.
    """
    path = data_dir / name
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"expected an Ed25519 key in {path}, got {type(key).__name__}"
            )
        return key
    key = Ed25519PrivateKey.generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return key


class AuditLog:
    """Append-only, hash-chained, with signed checkpoints."""

    def __init__(
        self, engine: sa.Engine, key: Ed25519PrivateKey, *, checkpoint_every: int = 100
    ) -> None:
        self.engine = engine
        self.key = key
        self.checkpoint_every = checkpoint_every

    def append(
        self,
        *,
        actor: str,
        action: str,
        target: str = "",
        detail: dict[str, Any] | None = None,
        now: datetime,
    ) -> int:
        """Add one record; return its sequence number."""
        detail = detail or {}
        ts = as_utc(now)
        for _attempt in range(20):
            with Session(self.engine) as session:
                last = _head(session)
                seq = 1 if last is None else last.seq + 1
                prev = GENESIS if last is None else last.hash
                digest = record_hash(
                    prev_hash=prev,
                    seq=seq,
                    ts=ts,
                    actor=actor,
                    action=action,
                    target=target,
                    detail=detail,
                )
                session.add(
                    AuditRecord(
                        seq=seq,
                        ts=ts,
                        actor=actor,
                        action=action,
                        target=target,
                        detail=detail,
                        prev_hash=prev,
                        hash=digest,
                    )
                )
                if seq % self.checkpoint_every == 0:
                    mark = sign_checkpoint(self.key, seq, digest)
                    session.add(
                        AuditCheckpoint(
                            seq=seq, hash=mark.hash, signature=mark.signature
                        )
                    )
                try:
                    session.commit()
                except sa.exc.IntegrityError:
                    session.rollback()
                    continue  # another writer took this seq; link to theirs
                return seq
        raise ConfigError("could not append to the audit log: too much contention")

    def verify(self) -> Finding | None:
        """Walk the stored chain; return the first problem, or None."""
        return verify_stored(self.engine, self.key)

    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first, filtered on the server."""
        stmt = select(AuditRecord)
        if actor:
            stmt = stmt.where(AuditRecord.actor == actor)
        if action:
            stmt = stmt.where(AuditRecord.action == action)
        if target:
            stmt = stmt.where(AuditRecord.target == target)
        if before:
            stmt = stmt.where(col(AuditRecord.seq) < before)
        with Session(self.engine) as session:
            return list(
                session.exec(
                    stmt.order_by(col(AuditRecord.seq).desc()).limit(limit)
                ).all()
            )


def _head(session: Session) -> AuditRecord | None:
    """The newest record of the chain, if any."""
    return session.exec(
        select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)
    ).first()


def verify_stored(engine: sa.Engine, key: Ed25519PrivateKey | None) -> Finding | None:
    """Verify the chain as stored (in storage order, not sorted by ``seq``)."""
    with Session(engine) as session:
        # rowid order on SQLite / physical order elsewhere would hide a swap;
        # ordering by seq and checking links finds changed and removed records,
        # and a swapped pair breaks the links too.
        rows = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all()
        marks = session.exec(select(AuditCheckpoint)).all()
        entries = [
            Entry(
                seq=r.seq,
                ts=as_utc(r.ts),
                actor=r.actor,
                action=r.action,
                target=r.target,
                detail=r.detail,
                prev_hash=r.prev_hash,
                hash=r.hash,
            )
            for r in rows
        ]
        checkpoints = [
            SignedCheckpoint(seq=m.seq, hash=m.hash, signature=m.signature)
            for m in marks
        ]
    return verify_chain(
        entries, checkpoints=checkpoints, public_key=key.public_key() if key else None
    )
