"""The audit chain (pure): each record carries the previous record's hash.

``record_hash`` fixes what a record's hash covers; ``verify_chain`` walks the
records in sequence and names the first one that was changed, removed or
reordered. Signed checkpoints (Ed25519 over a sequence number and the head
hash) stop someone with database access from rewriting the whole chain.
Storage and the signing key's file are left to :mod:`central.audit.log`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit record as stored."""

    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the chain up to ``seq`` ends in ``hash``."""

    seq: int
    hash: str
    signature: str  # hex


@dataclass(frozen=True, slots=True)
class Finding:
    """The first problem in the chain."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.problem}"


def record_hash(
    *,
    prev_hash: str,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    detail: Mapping[str, Any],
) -> str:
    """The SHA-256 over the previous hash and this record's canonical JSON."""
    canonical = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "ts": ts.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _checkpoint_message(seq: int, head: str) -> bytes:
    return f"baling-audit:{seq}:{head}".encode()


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, head: str) -> Checkpoint:
    """Sign the head of the chain at ``seq``."""
    return Checkpoint(
        seq=seq, hash=head, signature=key.sign(_checkpoint_message(seq, head)).hex()
    )


def verify_chain(
    entries: Iterable[Entry],
    *,
    checkpoints: Iterable[Checkpoint] = (),
    public_key: Ed25519PublicKey | None = None,
) -> Finding | None:
    """Return the first problem in the chain, or None when it is intact.

    Entries must come ordered by their stored position (``seq`` ascending as
    the database returns them); a record whose ``seq`` is not the next one
    was removed (a gap) or reordered (a step back).
    """
    marks = {c.seq: c for c in checkpoints}
    expected_seq, prev = 1, GENESIS
    for entry in entries:
        problem = _check_entry(
            entry, expected_seq, prev, marks.get(entry.seq), public_key
        )
        if problem is not None:
            return problem
        prev, expected_seq = entry.hash, expected_seq + 1
    missing = [s for s in marks if s >= expected_seq]
    if missing:
        return Finding(min(missing), "removed (a signed checkpoint names it)")
    return None


def _check_entry(
    entry: Entry,
    expected_seq: int,
    prev: str,
    mark: Checkpoint | None,
    key: Ed25519PublicKey | None,
) -> Finding | None:
    if entry.seq < expected_seq:
        return Finding(
            entry.seq, f"out of order: found after record {expected_seq - 1}"
        )
    if entry.seq > expected_seq:
        return Finding(expected_seq, f"removed (the chain jumps to {entry.seq})")
    if entry.prev_hash != prev:
        return Finding(entry.seq, "does not link to the record before it")
    digest = record_hash(
        prev_hash=prev,
        seq=entry.seq,
        ts=entry.ts,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        detail=entry.detail,
    )
    if digest != entry.hash:
        return Finding(entry.seq, "changed (its hash does not match its content)")
    problem = _check_mark(mark, entry.hash, key) if mark is not None else ""
    return Finding(entry.seq, problem) if problem else None


def _check_mark(mark: Checkpoint, head: str, key: Ed25519PublicKey | None) -> str:
    if mark.hash != head:
        return "differs from the signed checkpoint at this record"
    if key is None:
        return ""
    try:
        key.verify(
            bytes.fromhex(mark.signature), _checkpoint_message(mark.seq, mark.hash)
        )
    except (InvalidSignature, ValueError):
        return "its checkpoint's signature is not central's"
    return ""
