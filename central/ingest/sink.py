"""The event sink: the one way an event enters central's database.

Every transport hands it envelopes that its adapter has already decoded —
the ingest worker (MQTT messages read by :mod:`central.ingest.triage`) and
the phone endpoint (OsmAnd / Traccar reports read by
:mod:`central.police.phone`). :meth:`EventSink.accept` then, inside the
caller's transaction:

* refuses, by reason, the events of a device that is not registered or was
  retired (``unknown_device``), and the events of a type its kind does not
  send (``wrong_kind``: :data:`EVENT_KINDS` — only a handheld raises an SOS,
  only a camera reads plates, only a kiosk files complaints);
* drops duplicates by event id — within the batch and against the table
  (``INSERT ... ON CONFLICT DO NOTHING``), so a redelivered message takes
  effect once;
* stores the new events and hands them to the services that take their
  types (police, plates, complaints, OTA, signals), sorted by device so that
  workers sharing the ingest lock rows in one order.

After the caller's commit :meth:`Stored.deliver` runs what the services
asked to send and audits nodes' refusals of commands (``security`` events).

Left to others: decoding and the envelope's time — a node's skewed clock is
the adapter's to notice and restamp, since each protocol carries time its
own way; presence (online/offline is the broker's word, kept by
:mod:`central.ingest.presence`; a phone is only marked heard); metrics and
logging per transport; the commit itself.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from sqlmodel import Session, select

from central.models import Certificate, Device

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import datetime

    import sqlalchemy as sa

    from central.audit.log import AuditLog
    from edge.protocol.envelope import Envelope

logger = logging.getLogger(__name__)

_LOUD_PER_REASON = 20  # then refusals of that reason are logged at debug
_FORGET_S = 30.0  # how long a device is known before asking again (retirements)
# The kinds that may send each event type a service acts on; a type not listed
# (ota, fault, flow, security, ...) any node may send. ``sim`` is the
# simulator kind that tests and demos use in place of any of them, on the
# loopback listener; an enrolled ``sim`` (one holding a fleet certificate, as
# a node at a real site must) counts as :data:`ENROLLED_SIM`, which none of
# these types lists: a simulator is never a handheld, camera or kiosk there.
ENROLLED_SIM = "sim (enrolled)"
_HANDHELD = frozenset({"handheld", "sim"})
EVENT_KINDS: dict[str, frozenset[str]] = {
    "sos": _HANDHELD,
    "position": _HANDHELD,
    "dispatch_ack": _HANDHELD,
    "lookup": _HANDHELD,
    "phone_report": _HANDHELD,
    "plate": frozenset({"camera", "sim"}),
    "violation": frozenset({"camera", "sim"}),
    "complaint": frozenset({"kiosk", "sim"}),
    "rating": frozenset({"kiosk", "sim"}),
    "plan": frozenset({"signal_controller", "sim"}),
    "mode": frozenset({"signal_controller", "sim"}),
}


class EventConsumer(Protocol):
    """A service that acts on some event types exactly once, with their commit.

    ``take`` runs inside the sink's transaction with only the events that
    were new (not duplicates) and returns what to do after the commit (send
    commands, broadcast).
    """

    types: frozenset[str]

    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Apply new events; return the after-commit action."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """What one :meth:`EventSink.accept` did, and what to run after the commit.

    Attributes:
        new: ids of the events stored now (not duplicates).
        distinct: events offered, once per id.
        repeats: events offered more than once in the same call.
        refused: refused events by reason.
        heard: devices whose events were accepted (stored or duplicate).
        after: actions to run once the transaction is committed.
    """

    new: frozenset[str]
    distinct: int
    repeats: int
    refused: Counter[str]
    heard: frozenset[str]
    after: tuple[Callable[[], None], ...]

    @property
    def duplicates(self) -> int:
        """Events that were already stored or repeated in this call."""
        return self.distinct - len(self.new) + self.repeats

    def deliver(self) -> None:
        """Run the after-commit actions; one failing does not stop the rest."""
        for action in self.after:
            try:
                action()
            except Exception:  # committed already; sending must not lose the batch
                logger.exception("After-commit action failed")


class EventSink:
    """Stores events and hands the new ones to the services, in one transaction.

    One per ingest worker (it caches which devices exist, for
    :data:`_FORGET_S`); the phone endpoint builds its own per request.
    """

    def __init__(
        self, *, consumers: Sequence[EventConsumer], audit: AuditLog | None = None
    ) -> None:
        """Build a sink.

        Args:
            consumers: the services fed new events of their ``types``.
            audit: where nodes' refusals of commands are recorded; None: nowhere.
        """
        self.consumers = list(consumers)
        self.audit = audit
        self._known: dict[str, str] = {}
        self._forget_at = 0.0
        self._loud: Counter[str] = Counter()

    def known(self, session: Session, devices: Iterable[str]) -> dict[str, str]:
        """The kind of each of ``devices`` that is registered and not retired.

        A ``sim`` with a fleet certificate is :data:`ENROLLED_SIM`.
        """
        if time.monotonic() >= self._forget_at:  # see retirements within 30 s
            self._known.clear()
            self._forget_at = time.monotonic() + _FORGET_S
        wanted = set(devices)
        missing = wanted - self._known.keys()
        if missing:
            live = Device.retired_at.is_(None)  # type: ignore[union-attr]
            ids = Device.id.in_(missing)  # type: ignore[attr-defined]
            found = dict(
                session.exec(select(Device.id, Device.kind).where(ids, live)).all()
            )
            sims = [d for d, kind in found.items() if kind == "sim"]
            if sims:
                of_sims = Certificate.device_id.in_(sims)  # type: ignore[attr-defined]
                enrolled = session.exec(select(Certificate.device_id).where(of_sims))
                found |= dict.fromkeys(enrolled.all(), ENROLLED_SIM)
            self._known.update(found)
        return {d: self._known[d] for d in wanted if d in self._known}

    def accept(
        self, session: Session, envelopes: Sequence[Envelope], now: datetime
    ) -> Stored:
        """Store the envelopes' events and apply the new ones; the caller commits.

        Args:
            session: the caller's open transaction.
            envelopes: decoded events, their ``ts`` already trusted by the adapter.
            now: the receipt time (``received_at`` of each stored event).

        Returns:
            What was stored and refused, and what to run after the commit.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database failed; nothing is stored.
        """
        known = self.known(session, {env.device for env in envelopes})
        rows: dict[str, dict[str, Any]] = {}
        refused: Counter[str] = Counter()
        repeats = 0
        for env in envelopes:
            if env.device not in known:
                refused["unknown_device"] += 1
                self._refuse(
                    "unknown_device",
                    f"{env.type} event: expected a registered device, "
                    f"got {env.device!r}",
                )
                continue
            allowed = EVENT_KINDS.get(env.type)
            if allowed is not None and known[env.device] not in allowed:
                refused["wrong_kind"] += 1
                self._refuse(
                    "wrong_kind",
                    f"{env.type} event: expected a device of kind "
                    f"{'/'.join(sorted(allowed))}, got {env.device!r} "
                    f"({known[env.device]})",
                )
                continue
            event_id = str(env.id)
            if event_id in rows:
                repeats += 1
                continue
            rows[event_id] = {
                "id": event_id,
                "device": env.device,
                "type": env.type,
                "ts": env.ts,
                "received_at": now,
                "body": env.body,
            }
        new = _insert(session, list(rows.values()))
        fresh = [row for event_id, row in rows.items() if event_id in new]
        after = self._dispatch(session, fresh, now)
        refusals = [row for row in fresh if row["type"] == "security"]
        if refusals and self.audit is not None:
            after.append(lambda: self._audit_refusals(refusals, now))
        return Stored(
            new=frozenset(new),
            distinct=len(rows),
            repeats=repeats,
            refused=refused,
            heard=frozenset(row["device"] for row in rows.values()),
            after=tuple(after),
        )

    def _dispatch(
        self, session: Session, fresh: list[dict[str, Any]], now: datetime
    ) -> list[Callable[[], None]]:
        """Hand each service its new events, by device (stable: in order)."""
        after: list[Callable[[], None]] = []
        # By device, so that workers sharing the ingest lock a device's rows
        # (officer, junction, ...) in one order and never deadlock each other.
        ordered = sorted(fresh, key=lambda row: str(row["device"]))
        for consumer in self.consumers:
            mine = [row for row in ordered if row["type"] in consumer.types]
            if mine:
                after.append(consumer.take(session, mine, now))
        return after

    def _audit_refusals(self, rows: list[dict[str, Any]], now: datetime) -> None:
        """A node's refusal of a command (a ``security`` event) joins the audit log."""
        if self.audit is None:
            return
        for row in rows:
            body = row["body"]
            self.audit.append(
                actor=row["device"],
                action="command.refused",
                target=f"{row['device']}/{body.get('command', '?')}",
                detail={"reason": body.get("reason", ""), "event": row["id"]},
                now=now,
            )

    def _refuse(self, reason: str, detail: str) -> None:
        self._loud[reason] += 1
        loud = self._loud[reason] <= _LOUD_PER_REASON
        logger.log(
            logging.WARNING if loud else logging.DEBUG,
            "Refused (%s): %s",
            reason,
            detail,
        )


def _insert(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows, skipping ids already stored; return the new ids.

    One statement per batch in the database's own terms, without the ORM's
    per-value bind processing (a third of the batch's time at 500 rows):
    PostgreSQL takes the columns as arrays (``unnest``: one short statement,
    the same text every time); SQLite takes a multi-row ``VALUES``. Both
    skip ids already stored (``ON CONFLICT DO NOTHING``) and return the ids
    that were new (``RETURNING``), so the dedupe holds between workers too.
    """
    if not rows:
        return set()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return _insert_postgres(conn, rows)
    return _insert_sqlite(conn, rows)


_PG_INSERT = (
    "INSERT INTO event (id, device, type, ts, received_at, body) "
    "SELECT u.id, u.device, u.type, u.ts, %(received_at)s, u.body::json "
    "FROM unnest(%(id)s::text[], %(device)s::text[], %(type)s::text[], "
    "%(ts)s::timestamptz[], %(body)s::text[]) AS u(id, device, type, ts, body) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)


def _insert_postgres(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    params = {
        "received_at": rows[0]["received_at"],
        "id": [row["id"] for row in rows],
        "device": [row["device"] for row in rows],
        "type": [row["type"] for row in rows],
        "ts": [row["ts"] for row in rows],
        "body": [_json(row["body"]) for row in rows],
    }
    return set(conn.exec_driver_sql(_PG_INSERT, params).scalars().all())


# SQLite's limit on a statement's parameters is 32,766 (3.32+); stay well below.
_SQLITE_ROWS = 1000


def _insert_sqlite(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    received_at = _sqlite_time(rows[0]["received_at"])
    new: set[str] = set()
    for start in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[start : start + _SQLITE_ROWS]
        params: list[object] = []
        for row in chunk:
            params += (
                row["id"],
                row["device"],
                row["type"],
                _sqlite_time(row["ts"]),
                received_at,
                _json(row["body"]),
            )
        sql = (  # placeholders only: no value is part of the text
            "INSERT INTO event (id, device, type, ts, received_at, body) VALUES "  # noqa: S608
            + ",".join(["(?,?,?,?,?,?)"] * len(chunk))
            + " ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        new.update(conn.exec_driver_sql(sql, tuple(params)).scalars().all())
    return new


def _sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's SQLite ``DateTime`` stores it (no offset, µs)."""
    text = str(value)  # isoformat with a space; its options cost a third more
    return text[:26] if value.microsecond else text[:19] + ".000000"


_ENCODER = msgspec.json.Encoder()


def _json(body: dict[str, Any]) -> str:
    """A body as JSON text for the ``JSON`` column (compact; a tenth of json.dumps)."""
    return _ENCODER.encode(body).decode()
