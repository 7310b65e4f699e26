"""The durable outbox: every event is on disk before it is sent.

An entry is written (SQLite, WAL, ``synchronous=FULL``) before the first
publish and deleted only when the broker acknowledges it (PUBACK), so it
survives ``kill -9`` of the node and restarts of the broker. Entries leave in
order: highest priority first (an SOS jumps the queue), then by sequence.

Disk budget policy, when ``max_bytes`` would be exceeded:

1. the oldest *telemetry* entries are deleted, counted in
   :attr:`Outbox.dropped_telemetry`;
2. a new telemetry entry that still does not fit is dropped and counted;
3. a new *event* that still does not fit raises :class:`OutboxFullError` and
   nothing is written, so the caller knows and raises a fault — events are
   never dropped silently. A disk that is really full (``SQLITE_FULL``) is
   the same error; entries acknowledged but not deletable there are kept
   in memory as sent and deleted later (after a restart they are sent
   again; central keeps each event id once).

A publish the broker refuses (a failure reason code in PUBACK) is moved to a
dead-letter table with the reason, never deleted. Publishing is left to the
caller (:class:`edge.agent.Agent` pumps this outbox into the bus).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from edge.errors import OutboxError, OutboxFullError

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

EntryKind = Literal["event", "telemetry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    qos      INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    kind     TEXT    NOT NULL CHECK (kind IN ('event', 'telemetry')),
    size     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority DESC, seq);
CREATE TABLE IF NOT EXISTS cursor (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    seq     INTEGER PRIMARY KEY,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason  TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One message waiting to be sent."""

    topic: str
    payload: bytes
    kind: EntryKind = "event"
    qos: int = 1
    priority: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("event", "telemetry"):
            raise ValueError(f"expected kind event|telemetry, got {self.kind!r}")
        if self.qos not in (0, 1):
            raise ValueError(f"expected qos 0 or 1, got {self.qos}")


@dataclass(frozen=True, slots=True)
class Stored:
    """An entry as it sits in the outbox, with its sequence number."""

    seq: int
    topic: str
    payload: bytes
    qos: int


class Outbox:
    """A SQLite-backed FIFO with priorities and a disk budget."""

    def __init__(self, path: Path, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_bytes <= 0:
            raise ValueError(f"expected max_bytes > 0, got {max_bytes}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            ).fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox at {path}: {exc}") from exc
        self._depth, self._bytes = int(row[0]), int(row[1])
        self._unforgotten: set[int] = set()  # acknowledged, not yet deleted
        self.dropped_telemetry = 0

    @property
    def depth(self) -> int:
        """Entries waiting (including those in flight)."""
        return self._depth

    @property
    def bytes(self) -> int:
        """Payload bytes waiting."""
        return self._bytes

    def put(
        self, entries: list[Entry], *, cursor: tuple[str, str] | None = None
    ) -> int:
        """Store entries in one transaction.

        Args:
            entries: what to send, in order.
            cursor: an optional ``(name, value)`` saved in the same transaction,
                so a producer's position (a counter, a register read) can never
                disagree with what was stored after a crash.

        Raises:
            OutboxFullError: the events among ``entries`` do not fit even after
                all telemetry is gone; nothing was written.

        Returns:
            How many entries were stored (dropped telemetry is not counted).
        """
        with self._lock:
            try:
                return self._put(entries, cursor)
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    # the disk itself is full: the same as a full budget
                    raise OutboxFullError(f"the outbox's disk is full: {exc}") from exc
                raise OutboxError(f"cannot write to the outbox: {exc}") from exc

    def _put(self, entries: list[Entry], cursor: tuple[str, str] | None) -> int:
        need = sum(len(e.payload) for e in entries)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            freed, dropped = self._make_room(need)
            kept = self._fit(entries, self._bytes - freed)
            self._db.executemany(
                "INSERT INTO outbox (topic, payload, qos, priority, kind, size) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (e.topic, e.payload, e.qos, e.priority, e.kind, len(e.payload))
                    for e in kept
                ],
            )
            if cursor is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO cursor (name, value) VALUES (?, ?)", cursor
                )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back itself on a full disk
                self._db.execute("ROLLBACK")
            raise
        self._depth += len(kept) - dropped
        self._bytes += sum(len(e.payload) for e in kept) - freed
        return len(kept)

    def _fit(self, entries: list[Entry], in_use: int) -> list[Entry]:
        """Return what of ``entries`` fits; new telemetry gives way to events."""
        if in_use + sum(len(e.payload) for e in entries) <= self._max_bytes:
            return entries
        events = [e for e in entries if e.kind == "event"]
        event_bytes = sum(len(e.payload) for e in events)
        if in_use + event_bytes > self._max_bytes:
            raise OutboxFullError(
                f"expected room for {event_bytes} bytes of events within "
                f"{self._max_bytes}, got {in_use} in use by events"
            )
        self.dropped_telemetry += len(entries) - len(events)
        return events

    def _make_room(self, need: int) -> tuple[int, int]:
        """Delete oldest telemetry until ``need`` fits; return bytes and rows freed."""
        over = self._bytes + need - self._max_bytes
        freed = 0
        if over <= 0:
            return 0, 0
        rows = self._db.execute(
            "SELECT seq, size FROM outbox WHERE kind = 'telemetry' ORDER BY seq"
        ).fetchall()
        doomed: list[tuple[int]] = []
        for seq, size in rows:
            if freed >= over:
                break
            doomed.append((seq,))
            freed += size
        if doomed:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", doomed)
            self.dropped_telemetry += len(doomed)
            logger.warning(
                "Outbox full: dropped %d oldest telemetry entries", len(doomed)
            )
        return freed, len(doomed)

    def _recount(self) -> None:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
        ).fetchone()
        self._depth, self._bytes = int(row[0]), int(row[1])

    def cursor(self, name: str) -> str | None:
        """Return a producer's saved position, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM cursor WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def peek(
        self, limit: int, *, skip: set[int] | frozenset[int] = frozenset()
    ) -> list[Stored]:
        """Return up to ``limit`` entries in send order, leaving out ``skip``."""
        with self._lock:
            gone = self._unforgotten
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos FROM outbox "
                "ORDER BY priority DESC, seq LIMIT ?",
                (limit + len(skip) + len(gone),),
            ).fetchall()
        out = [
            Stored(seq=r[0], topic=r[1], payload=bytes(r[2]), qos=r[3])
            for r in rows
            if r[0] not in skip and r[0] not in gone
        ]
        return out[:limit]

    def ack(self, seqs: list[int]) -> None:
        """Delete entries the broker has acknowledged."""
        if not seqs:
            return
        with self._lock:
            seqs = [*seqs, *self._unforgotten]
            marks = ",".join("?" * len(seqs))
            try:
                sizes = self._db.execute(
                    f"DELETE FROM outbox WHERE seq IN ({marks}) RETURNING size",  # noqa: S608
                    seqs,
                ).fetchall()
            except sqlite3.Error as exc:
                # A full disk cannot even log a delete: remember them (never
                # sent again from this process) and delete them later.
                if not self._unforgotten:
                    logger.warning("Cannot delete acknowledged entries: %s", exc)
                self._unforgotten.update(seqs)
                return
            self._unforgotten.clear()
            self._depth -= len(sizes)
            self._bytes -= sum(int(r[0]) for r in sizes)

    def bury(self, seq: int, reason: str) -> None:
        """Move an entry the broker refused to the dead-letter table."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO dead (seq, topic, payload, reason) "
                "SELECT seq, topic, payload, ? FROM outbox WHERE seq = ?",
                (reason, seq),
            )
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._db.execute("COMMIT")
            self._recount()

    def dead(self) -> list[tuple[int, str, str]]:
        """Return ``(seq, topic, reason)`` of every refused entry."""
        with self._lock:
            rows = self._db.execute("SELECT seq, topic, reason FROM dead ORDER BY seq")
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
