"""The ingest worker: broker → triage → one committed batch → acknowledgements.

Each worker holds a manual-ack MQTT 5 link on ``bl/v1/+/event/#`` (plus
telemetry) — as the shared subscription ``$share/central/...`` when several
workers split the load (see :func:`subscriptions` for why not always). Two
threads share the work: the link thread reads and batches while the
committer triages and commits the batch before, so reading overlaps the
database's work. A message is acknowledged (by the link thread, the
socket's only user) only after its effect is committed; if the commit
fails (the database restarted) the batch is kept and retried, never
acknowledged, so the broker keeps it. Events are stored by the
:class:`~central.ingest.sink.EventSink` (duplicates ignored by event id,
services fed in the same transaction); states by
:class:`~central.ingest.presence.Presence`. A message that breaks the
contract is logged with the reason, counted, and acknowledged so it never
blocks the good ones behind it.

Or, where the broker does not keep shared subscriptions over a restart
(Mosquitto), each worker takes one partition of the devices (a hash of the
id) on a plain persistent subscription and acknowledges the others'
messages unread: every device's events go to one worker, in order, and a
restart loses nothing.

The presence worker (one per deployment) also takes every node's retained
state on a plain subscription — retained messages are not delivered on
shared subscriptions. Timers (the services' and the offline sweep) are not
ingest's: :class:`central.timers.TimerWorker` runs them beside it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from central.ingest.presence import Presence
from central.ingest.triage import Accepted, Rejected, triage
from edge.bus import Backoff, PahoBus, Received, TlsFiles
from edge.protocol import PayloadError, topics

if TYPE_CHECKING:
    from datetime import datetime

    from central.ingest.sink import EventSink
    from central.messaging.live import Broadcaster
    from central.metrics import Metrics
    from edge.clock import Clock
    from edge.protocol.envelope import Envelope
    from edge.protocol.messages import StateBody

logger = logging.getLogger(__name__)

_LOUD_PER_REASON = 20  # then rejections of that reason are logged at debug
URGENT_SUFFIXES = ("/event/sos",)  # a batch holding one of these is committed at once


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
    """What one batch holds once triaged and sorted by channel."""

    events: list[Envelope] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)
    states: dict[str, tuple[StateBody, datetime]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)


class IngestWorker:
    """One ingest worker thread around a manual-ack link.

    The MQTT adapter of the :class:`~central.ingest.sink.EventSink`: it
    collects messages, triages them, hands the events to the sink and the
    states to :class:`~central.ingest.presence.Presence` in one transaction,
    and acknowledges after the commit. Timers run elsewhere
    (:class:`central.timers.TimerWorker`).
    """

    def __init__(
        self,
        *,
        bus: PahoBus,
        sink: EventSink,
        engine: sa.Engine,
        metrics: Metrics,
        clock: Clock,
        broadcaster: Broadcaster | None = None,
        batch: int = 500,
        flush_s: float = 0.05,
        max_bytes: int = 64 * 1024,
        partition: tuple[int, int] | None = None,
    ) -> None:
        """Build a worker; nothing runs until :meth:`start`.

        Args:
            bus: its manual-ack link (see :func:`make_ingest_link`).
            sink: where its events go.
            engine: the database its transactions run on.
            metrics: the process's counters.
            clock: the receipt time of each batch.
            broadcaster: the consoles' live stream (device changes); None: none.
            batch: at most this many messages a transaction.
            flush_s: at most this long to fill a batch.
            max_bytes: a payload over this is rejected (``oversize``).
            partition: (k, n): take only devices whose hash is k modulo n.
        """
        self.engine = engine
        self.bus = bus
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self.broadcaster = broadcaster
        self._skew_said: dict[str, float] = {}
        self.batch = batch
        self.flush_s = flush_s
        self.max_bytes = max_bytes
        self.partition = partition
        self.presence = Presence()
        self._loud: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The link thread hands full batches to the committer (at most one
        # waiting) and takes back the committed ones to acknowledge.
        self._todo: queue.Queue[list[Received]] = queue.Queue(maxsize=1)
        self._committed: deque[list[Received]] = deque()
        self._closing = threading.Event()
        self.taken = 0  # messages this worker committed (acknowledged soon after)

    def start(self) -> None:
        """Connect and start the worker's threads (the link's and the committer)."""
        self.bus.start()
        self._stop.clear()
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the link is up and subscribed."""
        return self.bus.wait_subscribed(timeout)

    def stop(self) -> None:
        """Stop taking messages; what is not committed stays unacknowledged.

        The batches already handed to the committer are committed and
        acknowledged first, unless the database is failing.
        """
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
            self._ack_committed()
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
        """The link thread: read, hand batches over, acknowledge what is committed.

        The committer (its own thread) runs :meth:`process` on one batch
        while this thread reads the next, so the MQTT work overlaps the
        database's (SQLite and psycopg release the GIL while the database
        works; PostgreSQL works in its own process). Acknowledgements are
        sent from this thread, the only one that touches the socket, and
        only for batches the committer has committed, in their order.
        """
        committer = threading.Thread(
            target=self._commit_loop, name="ingest-commit", daemon=True
        )
        committer.start()
        try:
            while not self._stop.is_set():
                self._ack_committed()
                if self._todo.full():  # the committer is behind: the broker waits
                    self.bus.poll(0.005)
                    continue
                batch = self._collect()
                if batch:
                    self._todo.put(batch)
        finally:
            self._closing.set()
            committer.join(timeout=8)
            self._ack_committed()

    def _commit_loop(self) -> None:
        """The committer thread: commit each batch, retrying while the database fails.

        A batch whose commit fails is kept and retried with backoff, never
        acknowledged, so the broker keeps it; on stop it is let go as it is.
        """
        backoff = Backoff(initial=0.2, cap=5.0)
        while True:
            try:
                batch = self._todo.get(timeout=0.05)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            while True:
                try:
                    self.process(batch)
                except sa.exc.SQLAlchemyError as exc:
                    self.metrics.db_errors.inc()
                    delay = backoff.next()
                    logger.warning(
                        "Commit failed (%s); retrying %d messages in %.1fs",
                        type(exc).__name__,
                        len(batch),
                        delay,
                    )
                    if self._stop.wait(delay):
                        return  # not committed: not acknowledged, the broker keeps it
                    continue
                break
            backoff.reset()
            self._committed.append(batch)

    def _ack_committed(self) -> None:
        """Acknowledge the batches the committer has committed, oldest first."""
        while self._committed:
            self.bus.ack_many(self._committed.popleft())

    # -- one batch ---------------------------------------------------------------
    def process(self, msgs: list[Received]) -> None:
        """Triage and commit a batch; raises on database errors (nothing acked)."""
        started = time.perf_counter()
        now = self.clock.now()
        batch = _Batch()
        accepted = self._triage(msgs, now, batch)
        with Session(self.engine) as session:
            others = {a.envelope.device for a in accepted if a.channel != "event"}
            known = self.sink.known(session, others)
            for acc in accepted:
                self._sort(acc, now, known, batch)
            stored = self.sink.accept(session, batch.events, now)
            for device in stored.heard:
                batch.seen[device] = now
            changed = self.presence.write(session, states=batch.states, seen=batch.seen)
            session.commit()
        stored.deliver()
        batch.rejected.update(stored.refused)
        for reason, n in batch.rejected.items():
            self.metrics.rejected.labels(reason).inc(n)
        for channel, n in batch.channels.items():
            self.metrics.received.labels(channel).inc(n)
        self.metrics.stored.inc(len(stored.new))
        self.metrics.duplicates.inc(stored.duplicates)
        self.taken += len(msgs)
        self.metrics.batch_size.observe(len(msgs))
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if self.broadcaster is not None:
            for item in changed:
                self.broadcaster.publish(item)

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
            if len(self._skew_said) > 10_000:  # noqa: PLR2004 - bounded
                self._skew_said.clear()
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

    def _sort(
        self, acc: Accepted, now: datetime, known: dict[str, str], batch: _Batch
    ) -> None:
        """Events to the sink (which checks their device); the rest need a known one."""
        env = acc.envelope
        batch.channels[acc.channel] += 1
        if acc.channel == "event":
            batch.events.append(env)
            return
        if env.device not in known:
            self._reject(
                f"bl/v1/{env.device}/{acc.channel}",
                "unknown_device",
                f"expected a registered device, got {env.device!r}",
                batch,
            )
            return
        if acc.channel == "state" and acc.state is not None:
            batch.states[env.device] = (acc.state, now)
        batch.seen[env.device] = now


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
