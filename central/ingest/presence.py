"""Presence: whether a device is connected, and when it was last heard from.

Whether a device is online is the broker's word only: its retained
``state`` and its last will, written by :class:`Presence` for the ingest
worker that holds the state subscription. Any message of a known device
(and a phone's report) marks it heard (``last_seen``) but never online — an
event can be a backlog arriving after the will that said it went away.
:class:`OfflineSweep` is a timer (run by :class:`central.timers.TimerWorker`)
that marks devices offline once they have been silent too long, for a
broker that lost a will.

Left to others: reading and triaging messages (:mod:`central.ingest.worker`),
the commit, storing events (:mod:`central.ingest.sink`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from central.models import Device

if TYPE_CHECKING:
    from central.messaging.live import Broadcaster
    from central.metrics import Metrics
    from edge.clock import Clock
    from edge.protocol.messages import StateBody

logger = logging.getLogger(__name__)


class Presence:
    """Writes reported states and ``last_seen``: two statements a batch.

    ``last_seen`` is written at most every ``seen_every`` per device unless
    its state changes: presence needs seconds, not a row update per event.
    One per ingest worker (it remembers when it last wrote each device).
    """

    def __init__(self, *, seen_every: timedelta = timedelta(seconds=5)) -> None:
        """Build the writer; ``seen_every`` bounds ``last_seen`` writes per device."""
        self.seen_every = seen_every
        self._seen_written: dict[str, datetime] = {}

    def write(
        self,
        session: Session,
        *,
        states: dict[str, tuple[StateBody, datetime]],
        seen: dict[str, datetime],
    ) -> list[dict[str, Any]]:
        """Write states and receipt times; return the consoles' live updates.

        A fleet's boot storm is thousands of state messages a second; one
        UPDATE each would hold the batch (and every event behind it) for
        seconds, so the states go as one executemany and the devices merely
        heard from as one UPDATE.
        """
        changed: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        heard: list[str] = []
        signals: dict[str, dict[str, Any]] = {}
        for device, when in seen.items():
            values: dict[str, Any] = {"last_seen": when}
            state = states.get(device)
            written = self._seen_written.get(device)
            recent = written is not None and when - written < self.seen_every
            if state is None and recent:
                continue
            if len(self._seen_written) > 1_000_000:  # noqa: PLR2004 - bounded
                self._seen_written.clear()
            self._seen_written[device] = when
            if state is None:
                heard.append(device)
            else:
                body = state[0]
                values.update(
                    online=body.online,
                    version=body.version,
                    health_status=body.health.status,
                    health=body.health.model_dump(),
                    reported_version=body.config.version,
                    config_status=body.config.status,
                    config_reason=body.config.reason,
                )
                rows.append({"row_id": device, **values})
            changed.append(
                {
                    "type": "device",
                    "id": device,
                    **{
                        k: (v.isoformat() if isinstance(v, datetime) else v)
                        for k, v in values.items()
                    },
                }
            )
            signal = state[0].detail.get("signal") if state is not None else None
            if isinstance(signal, dict):  # a cabinet's running phase, for the console
                signals[device] = signal
        changed.extend(_signal_states(session, signals))
        table = Device.__table__  # type: ignore[attr-defined]
        if rows:
            stmt = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({c: sa.bindparam(c) for c in rows[0] if c != "row_id"})
            )
            rows.sort(key=lambda p: str(p["row_id"]))  # one lock order for all
            session.connection().execute(stmt, rows)
        if heard:  # one batch, one receipt time
            mark_seen(session, heard, seen[heard[0]])
        return changed


# What a cabinet's running state may tell the console; nothing else passes.
SIGNAL_KEYS = ("mode", "stage", "into_s", "plan", "latched", "source", "groups")


def _signal_states(
    session: Session, signals: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Live ``signal_state`` items: only registered cabinets', only known keys.

    A node of another kind that puts ``signal`` in its state gets nothing
    onto the consoles, and no node can set an item's ``type`` or ``junction``.
    """
    if not signals:
        return []
    cabinets = set(
        session.exec(
            select(Device.id).where(
                col(Device.id).in_(signals), Device.kind == "signal_controller"
            )
        ).all()
    )
    return [
        {
            **{k: signal[k] for k in SIGNAL_KEYS if k in signal},
            "junction": device,
            "type": "signal_state",
        }
        for device, signal in signals.items()
        if device in cabinets
    ]


def mark_seen(session: Session, devices: list[str], when: datetime) -> None:
    """Devices heard from: seen now — never waiting on a row lock.

    Not "online": whether a device is connected is the broker's word
    (its state, its last will). An event can be a backlog arriving after
    the will that said the device went away.

    Workers sharing the ingest hear the same devices in the same second;
    a row another transaction is writing is skipped (it is being marked
    seen, or given its state, right now) instead of queueing every
    worker behind one commit.
    """
    table = Device.__table__  # type: ignore[attr-defined]
    free = (
        sa.select(table.c.id)
        .where(table.c.id.in_(devices))
        .with_for_update(skip_locked=True, key_share=True)  # FOR NO KEY UPDATE
    )
    session.execute(sa.update(table).where(table.c.id.in_(free)).values(last_seen=when))


class OfflineSweep:
    """A timer: mark devices offline that have been silent too long.

    Runs every ``every_s`` (by the clock's monotonic time) when ticked; also
    sets the ``devices_online`` gauge.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        metrics: Metrics,
        broadcaster: Broadcaster | None = None,
        offline_after_s: float = 120.0,
        every_s: float = 5.0,
    ) -> None:
        """Build the sweep (it holds no connection; the engine comes with each tick)."""
        self.clock = clock
        self.metrics = metrics
        self.broadcaster = broadcaster
        self.offline_after = timedelta(seconds=offline_after_s)
        self.every_s = every_s
        self._next = 0.0

    def tick(self, engine: sa.Engine) -> None:
        """Sweep if one is due."""
        if self.clock.monotonic() < self._next:
            return
        self._next = self.clock.monotonic() + self.every_s
        self.sweep(engine)

    def sweep(self, engine: sa.Engine) -> None:
        """Mark devices offline that have been silent too long, now."""
        cutoff = self.clock.now() - self.offline_after
        table = Device.__table__  # type: ignore[attr-defined]
        with Session(engine) as session:
            gone = session.execute(
                sa.update(table)
                .where(table.c.online.is_(True), table.c.last_seen < cutoff)
                .values(online=False)
                .returning(table.c.id)
            ).all()
            online = session.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.online.is_(True))
            ).scalar_one()
            session.commit()
        self.metrics.devices_online.set(online)
        for (device,) in gone:
            logger.info("Device %s silent since before %s: offline", device, cutoff)
            if self.broadcaster is not None:
                self.broadcaster.publish(
                    {"type": "device", "id": device, "online": False}
                )
