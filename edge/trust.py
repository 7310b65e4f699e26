"""Which command keys a node trusts, and which nonces it has seen.

Both live in the node's data directory (SQLite), so a restart neither
forgets a rotated key nor accepts a replayed command. The checks themselves
are :func:`edge.protocol.signing.verify_command`.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from edge.protocol.signing import key_id, public_key_from_text, public_key_text

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS command_key (kid TEXT PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonce (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);
"""


class TrustStore:
    """Trusted command keys and the nonce ledger of one node."""

    def __init__(self, path: Path, *, initial_keys: list[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        for text in initial_keys or []:
            self.add(text)

    def keys(self) -> dict[str, Ed25519PublicKey]:
        """Trusted keys by id."""
        with self._lock:
            rows = self._db.execute("SELECT kid, key FROM command_key").fetchall()
        return {str(kid): public_key_from_text(str(key)) for kid, key in rows}

    def add(self, text: str) -> str:
        """Trust a key (base64 raw Ed25519); return its id."""
        public = public_key_from_text(text)
        kid = key_id(public)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO command_key (kid, key) VALUES (?, ?)",
                (kid, public_key_text(public)),
            )
        return kid

    def remove(self, kid: str) -> bool:
        """Stop trusting a key; return whether it was trusted."""
        with self._lock:
            cur = self._db.execute("DELETE FROM command_key WHERE kid = ?", (kid,))
        return cur.rowcount > 0

    def seen(self, nonce: str, *, expires: datetime) -> bool:
        """Record a nonce until it expires; True when it was already there."""
        now = datetime.now(UTC).timestamp()
        with self._lock:
            self._db.execute("DELETE FROM nonce WHERE expires < ?", (now,))
            cur = self._db.execute(
                "INSERT OR IGNORE INTO nonce (nonce, expires) VALUES (?, ?)",
                (nonce, expires.timestamp()),
            )
        return cur.rowcount == 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
