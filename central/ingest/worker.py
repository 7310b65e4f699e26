"""The ingest worker: broker → triage → one committed batch → acknowledgements.

Each worker holds a manual-ack MQTT 5 link on ``bl/v1/+/event/#`` (plus
telemetry) — as the shared subscription ``$share/central/...`` when several
workers split the load (see :func:`subscriptions` for why not always). A
message is acknowledged only after its effect is committed; if the commit
fails (the database restarted) the batch is kept and retried, never
acknowledged, so the broker keeps it. Duplicates are ignored by event id
(``INSERT ... ON CONFLICT DO NOTHING``). A message that breaks the contract
is logged with the reason, counted, and acknowledged so it never blocks the
good ones behind it.

Or, where the broker does not keep shared subscriptions over a restart
(Mosquitto), each worker takes one partition of the devices (a hash of the
id) on a plain persistent subscription and acknowledges the others'
messages unread: every device's events go to one worker, in order, and a
restart loses nothing.

The presence worker (one per deployment) also takes every node's retained
state on a plain subscription — retained messages are not delivered on
shared subscriptions — and marks silent devices offline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from central.ingest.triage import Accepted, Rejected, triage
from central.models import Device, Event
from edge.bus import Backoff, PahoBus, Received, TlsFiles
from edge.protocol import PayloadError, topics

if TYPE_CHECKING:
    from collections.abc import Callable

    from central.audit.log import AuditLog
    from central.messaging.live import Broadcaster
    from central.metrics import Metrics
    from edge.clock import Clock
    from edge.protocol.messages import StateBody

logger = logging.getLogger(__name__)

_LOUD_PER_REASON = 20  # then rejections of that reason are logged at debug
URGENT_SUFFIXES = ("/event/sos",)  # a batch holding one of these is committed at once


class Consumer(Protocol):
    """A service that acts on some event types exactly once, with their commit.

    ``take`` runs inside the batch's transaction with only the events that
    were new (not duplicates) and returns what to do after the commit (send
    commands, broadcast); ``tick`` runs about once a second on the presence
    worker for the service's timers.
    """

    types: frozenset[str]

    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Apply new events; return the after-commit action."""
        ...

    def tick(self, engine: sa.Engine) -> None:
        """Run timers."""
        ...


def subscriptions(*, presence: bool, shared: bool) -> list[tuple[str, int]]:
    """The filters an ingest worker subscribes to.

    ``shared`` puts events and telemetry on the ``$share/central/`` group so
    several workers split them. Mosquitto 2.0 does not restore shared
    subscriptions from its persistence file when it restarts: whatever nodes
    publish between the restart and the workers' re-subscription is
    acknowledged to them and dropped. A single worker therefore uses a plain
    persistent subscription, which Mosquitto restores (see the README).
    """
    wrap = topics.shared if shared else (lambda f: f)
    subs = [(wrap(topics.all_events()), 1), (wrap(topics.all_telemetry()), 1)]
    if presence:
        subs.append((topics.all_states(), 1))
    return subs


@dataclass
class _Batch:
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    states: dict[str, tuple[StateBody, datetime]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    repeats: int = 0


class IngestWorker:
    """One ingest worker thread around a manual-ack link."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        bus: PahoBus,
        metrics: Metrics,
        clock: Clock,
        broadcaster: Broadcaster | None = None,
        batch: int = 500,
        flush_s: float = 0.05,
        max_bytes: int = 64 * 1024,
        presence: bool = True,
        partition: tuple[int, int] | None = None,
        offline_after_s: float = 120.0,
        audit: AuditLog | None = None,
        consumers: list[Consumer] | None = None,
    ) -> None:
        self.engine = engine
        self.consumers = consumers or []
        self._next_tick = 0.0
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.broadcaster = broadcaster
        self._skew_said: dict[str, float] = {}
        self.audit = audit
        self.batch = batch
        self.flush_s = flush_s
        self.max_bytes = max_bytes
        self.presence = presence
        self.partition = partition
        self.offline_after = timedelta(seconds=offline_after_s)
        self._known: set[str] = set()
        self._loud: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0
        self._forget_at = 0.0
        self._dialect = engine.dialect.name
        self.taken = 0  # messages this worker committed (and then acknowledged)
        # last_seen is written at most this often per device unless its state
        # changes: presence needs seconds, not a row update per event.
        self.seen_every = timedelta(seconds=5)
        self._seen_written: dict[str, datetime] = {}

    def start(self) -> None:
        """Connect and start the worker thread."""
        self.bus.start()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the link is up and subscribed."""
        return self.bus.wait_subscribed(timeout)

    def stop(self) -> None:
        """Stop taking messages; what is not committed stays unacknowledged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.bus.stop()

    # -- loop ------------------------------------------------------------------
    def _collect(self) -> list[Received]:
        """Read from the link in this thread until a batch is full or due."""
        out: list[Received] = []
        deadline = time.monotonic() + self.flush_s
        while True:
            while len(out) < self.batch:
                try:
                    item = self.bus.inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Received):
                    if not self._mine(item.topic):
                        self.bus.ack(item)  # another partition's: its worker has it
                        continue
                    out.append(item)
                    if item.topic.endswith(URGENT_SUFFIXES):
                        return out  # an SOS waits for nobody
            remaining = deadline - time.monotonic()
            if len(out) >= self.batch or remaining <= 0 or self._stop.is_set():
                return out
            self.bus.poll(min(remaining, 0.05))

    def _mine(self, topic: str) -> bool:
        """Whether this worker's partition holds the topic's device.

        States are the presence worker's whatever their device; a topic
        that does not parse is taken, to be rejected with its reason.
        """
        if self.partition is None:
            return True
        try:
            parsed = topics.parse(topic)
        except PayloadError:
            return True
        if parsed.channel == "state":
            return True
        k, n = self.partition
        return zlib.crc32(parsed.device.encode()) % n == k

    def _run(self) -> None:
        backoff = Backoff(initial=0.2, cap=5.0)
        pending: list[Received] = []
        while not self._stop.is_set():
            if not pending:
                pending = self._collect()
            if pending:
                try:
                    self.process(pending)
                except sa.exc.SQLAlchemyError as exc:
                    self.metrics.db_errors.inc()
                    delay = backoff.next()
                    logger.warning(
                        "Commit failed (%s); retrying %d messages in %.1fs",
                        type(exc).__name__,
                        len(pending),
                        delay,
                    )
                    self._idle(delay)
                    continue
                backoff.reset()
                for msg in pending:
                    self.bus.ack(msg)
                pending = []
            if time.monotonic() >= self._forget_at:  # see retirements within 30 s
                self._known.clear()
                self._forget_at = time.monotonic() + 30.0
            if self.presence and time.monotonic() >= self._next_tick:
                self._next_tick = time.monotonic() + 1.0
                self._tick_consumers()
            if self.presence and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + 5.0
                try:
                    self.sweep()
                except sa.exc.SQLAlchemyError as exc:
                    logger.warning("Presence sweep failed: %s", exc)

    def _tick_consumers(self) -> None:
        for consumer in self.consumers:
            try:
                consumer.tick(self.engine)
            except Exception:  # a service's timer bug must not stop ingest
                logger.exception("Timer of %s failed", type(consumer).__name__)

    def _idle(self, seconds: float) -> None:
        """Wait, still serving the link (keepalive) while the database recovers."""
        until = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < until:
            self.bus.poll(min(0.1, max(0.0, until - time.monotonic())))

    # -- one batch ---------------------------------------------------------------
    def process(self, msgs: list[Received]) -> None:
        """Triage and commit a batch; raises on database errors (nothing acked)."""
        started = time.perf_counter()
        now = self.clock.now()
        batch = _Batch()
        accepted = self._triage(msgs, now, batch)
        with Session(self.engine) as session:
            self._check_known(session, {a.envelope.device for a in accepted})
            for acc in accepted:
                self._sort(acc, now, batch)
            new_ids = self._insert_events(session, batch)
            changed = self._update_devices(session, batch)
            after = self._feed_consumers(session, batch, new_ids, now)
            session.commit()
        for action in after:
            try:
                action()
            except Exception:  # committed already; sending must not lose the batch
                logger.exception("After-commit action failed")
        inserted = len(new_ids)
        self._audit_refusals(batch, new_ids, now)
        for reason, n in batch.rejected.items():
            self.metrics.rejected.labels(reason).inc(n)
        for channel, n in batch.channels.items():
            self.metrics.received.labels(channel).inc(n)
        self.metrics.stored.inc(inserted)
        self.metrics.duplicates.inc(len(batch.events) - inserted + batch.repeats)
        self.taken += len(msgs)
        self.metrics.batch_size.observe(len(msgs))
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if self.broadcaster is not None:
            for item in changed:
                self.broadcaster.publish(item)

    def _feed_consumers(
        self, session: Session, batch: _Batch, new_ids: set[str], now: datetime
    ) -> list[Callable[[], None]]:
        after = []
        # By device (stable: each device's events keep their order), so that
        # workers sharing the ingest lock a device's rows (officer, junction,
        # ...) in one order and never deadlock each other.
        ordered = sorted(batch.events.items(), key=lambda item: item[1]["device"])
        for consumer in self.consumers:
            mine = [
                row
                for event_id, row in ordered
                if row["type"] in consumer.types and event_id in new_ids
            ]
            if mine:
                after.append(consumer.take(session, mine, now))
        return after

    def _audit_refusals(self, batch: _Batch, new_ids: set[str], now: datetime) -> None:
        """A node's refusal of a command (a ``security`` event) joins the audit log."""
        if self.audit is None:
            return
        for event_id in new_ids:
            row = batch.events[event_id]
            if row["type"] != "security":
                continue
            body = row["body"]
            self.audit.append(
                actor=row["device"],
                action="command.refused",
                target=f"{row['device']}/{body.get('command', '?')}",
                detail={"reason": body.get("reason", ""), "event": event_id},
                now=now,
            )

    def _triage(
        self, msgs: list[Received], now: datetime, batch: _Batch
    ) -> list[Accepted]:
        accepted: list[Accepted] = []
        for msg in msgs:
            result = triage(msg.topic, msg.payload, now=now, max_bytes=self.max_bytes)
            if isinstance(result, Rejected):
                self._reject(msg.topic, result.reason, result.detail, batch)
                continue
            if result.skew:
                self._skewed(result)
            accepted.append(result)
        return accepted

    def _skewed(self, acc: Accepted) -> None:
        """Count a node whose clock is off; say so once a minute per device."""
        self.metrics.clock_skew.labels(acc.skew).inc()
        device = acc.envelope.device
        now = time.monotonic()
        if now >= self._skew_said.get(device, 0.0):
            self._skew_said[device] = now + 60.0
            logger.warning(
                "%s: clock far off (%s); its events are stored at receipt time",
                device,
                acc.skew,
            )

    def _reject(self, topic: str, reason: str, detail: str, batch: _Batch) -> None:
        batch.rejected[reason] += 1
        self._loud[reason] += 1
        level = (
            logging.WARNING if self._loud[reason] <= _LOUD_PER_REASON else logging.DEBUG
        )
        logger.log(level, "Rejected message on %.120s (%s): %s", topic, reason, detail)

    def _check_known(self, session: Session, devices: set[str]) -> None:
        missing = devices - self._known
        if missing:
            live = Device.retired_at.is_(None)  # type: ignore[union-attr]
            ids = Device.id.in_(missing)  # type: ignore[attr-defined]
            self._known.update(session.exec(select(Device.id).where(ids, live)).all())

    def _sort(self, acc: Accepted, now: datetime, batch: _Batch) -> None:
        env = acc.envelope
        batch.channels[acc.channel] += 1
        if env.device not in self._known:
            self._reject(
                f"bl/v1/{env.device}/{acc.channel}",
                "unknown_device",
                f"expected a registered device, got {env.device!r}",
                batch,
            )
            return
        if acc.channel == "state" and acc.state is not None:
            batch.states[env.device] = (acc.state, now)
        elif acc.channel == "event":
            if str(env.id) in batch.events:
                batch.repeats += 1
            batch.events.setdefault(
                str(env.id),
                {
                    "id": str(env.id),
                    "device": env.device,
                    "type": env.type,
                    "ts": env.ts,
                    "received_at": now,
                    "body": env.body,
                },
            )
        batch.seen[env.device] = now

    def _insert_events(self, session: Session, batch: _Batch) -> set[str]:
        if not batch.events:
            return set()
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        table: sa.Table = Event.__table__  # type: ignore[attr-defined]
        # RETURNING makes SQLAlchemy send the batch as one multi-row INSERT
        # (one statement, one release of the GIL) instead of a row-by-row
        # executemany, and tells which ids were new.
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(table.c.id)
        )
        return {str(r[0]) for r in session.execute(stmt, list(batch.events.values()))}

    def _update_devices(self, session: Session, batch: _Batch) -> list[dict[str, Any]]:
        """Write presence and reported state: two statements a batch.

        A fleet's boot storm is thousands of state messages a second; one
        UPDATE each would hold the batch (and every event behind it) for
        seconds, so the states go as one executemany and the devices merely
        heard from as one UPDATE.
        """
        changed: list[dict[str, Any]] = []
        states: list[dict[str, Any]] = []
        heard: list[str] = []
        for device, when in batch.seen.items():
            values: dict[str, Any] = {"last_seen": when}
            state = batch.states.get(device)
            written = self._seen_written.get(device)
            recent = written is not None and when - written < self.seen_every
            if state is None and recent:
                continue
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
                states.append({"row_id": device, **values})
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
                changed.append({"type": "signal_state", **signal, "junction": device})
        table = Device.__table__  # type: ignore[attr-defined]
        if states:
            stmt = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({c: sa.bindparam(c) for c in states[0] if c != "row_id"})
            )
            states.sort(key=lambda p: str(p["row_id"]))  # one lock order for all
            session.connection().execute(stmt, states)
        if heard:  # one batch, one receipt time
            self._mark_seen(session, heard, batch.seen[heard[0]])
        return changed

    def _mark_seen(self, session: Session, devices: list[str], when: datetime) -> None:
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
        session.execute(
            sa.update(table).where(table.c.id.in_(free)).values(last_seen=when)
        )

    def sweep(self) -> None:
        """Mark devices offline that have been silent too long."""
        cutoff = self.clock.now() - self.offline_after
        table = Device.__table__  # type: ignore[attr-defined]
        with Session(self.engine) as session:
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


def make_ingest_link(
    *,
    worker_id: str,
    host: str,
    port: int,
    inflight: int,
    presence: bool,
    shared: bool,
    tls: TlsFiles | None = None,
) -> PahoBus:
    """Build the manual-ack link of one ingest worker (a persistent session)."""
    return PahoBus(
        client_id=f"central-ingest-{worker_id}",
        host=host,
        port=port,
        subscriptions=subscriptions(presence=presence, shared=shared),
        clean_start=False,
        session_expiry=7 * 24 * 3600,
        manual_ack=True,
        threaded=False,  # the worker drives the socket itself: no GIL ping-pong
        receive_maximum=inflight,
        inflight=100,
        tls=tls,
    )
