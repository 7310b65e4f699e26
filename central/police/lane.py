"""The SOS lane: handhelds' SOS on their own topic, link, thread and transaction.

Positions, plate reads and every other event go through the bulk ingest
(:mod:`central.ingest.worker`), which batches hundreds of messages a
transaction; an SOS queued behind them waits for all of them. A handheld
therefore publishes its SOS on :func:`edge.protocol.topics.sos` (not under
``event/``, so the bulk ingest never sees it) and each central process runs
one :class:`SosLane`: a manual-ack link of its own (a persistent session, so
an SOS published while central is down waits for it), a thread of its own,
and a transaction per SOS (or per the few that arrived together) with
nothing bulk in it. The SOS is acknowledged to the broker after the
commit, as the bulk ingest does.

The lane stores the SOS through the same :class:`~central.ingest.sink.EventSink`
as every other event (registered handheld only, duplicates by event id
ignored, so a resent SOS takes effect once) and hands it to the police
service, whose after-commit sender alerts the officers nearby. Like the bulk
ingest, several processes split the lane by partition of the devices (each
takes its own and acknowledges the others' unread) or share it on an MQTT 5
shared subscription (a broker that keeps those over a restart).

Left to others: presence (a handheld's state and positions keep it), the
decisions about an SOS (:class:`~central.police.alarms.AlarmDesk`), sending
(the service's sender), the older handhelds' ``event/sos`` (the bulk ingest
still takes it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from central.ingest.sink import EventSink
from central.ingest.triage import Rejected, triage
from edge.bus import Backoff, PahoBus, Received, TlsFiles
from edge.protocol import PayloadError, topics

if TYPE_CHECKING:
    from central.metrics import Metrics
    from central.police.service import PoliceService
    from edge.clock import Clock
    from edge.protocol.envelope import Envelope

logger = logging.getLogger(__name__)

LANE_GROUP = "central-sos"  # its own shared group: never the bulk workers'
_MAX_BYTES = 16 * 1024  # an SOS body is a few hundred bytes


def lane_subscription(*, shared: bool) -> tuple[str, int]:
    """The SOS lane's one filter (QoS 1), in its own shared group when shared."""
    return (
        topics.shared(topics.all_sos(), LANE_GROUP) if shared else topics.all_sos(),
        1,
    )


def make_sos_link(
    *,
    client_id: str,
    host: str,
    port: int,
    shared: bool,
    tls: TlsFiles | None = None,
) -> PahoBus:
    """The SOS lane's manual-ack link (a persistent session, as ingest's)."""
    return PahoBus(
        client_id=client_id,
        host=host,
        port=port,
        subscriptions=[lane_subscription(shared=shared)],
        clean_start=False,
        session_expiry=7 * 24 * 3600,
        manual_ack=True,
        threaded=False,  # the lane's thread drives its own socket
        receive_maximum=100,
        inflight=100,
        tls=tls,
    )


class SosLane:
    """One thread that takes SOS messages and commits each on its own."""

    def __init__(
        self,
        *,
        bus: PahoBus,
        police: PoliceService,
        engine: sa.Engine,
        clock: Clock,
        metrics: Metrics | None = None,
        partition: tuple[int, int] | None = None,
    ) -> None:
        """Build the lane; nothing runs until :meth:`start`.

        Args:
            bus: its manual-ack link (:func:`make_sos_link`).
            police: the service that raises the alarm and alerts.
            engine: the database its transactions run on.
            clock: the receipt time of each SOS.
            metrics: the process's counters; None: none kept.
            partition: (k, n): take only devices whose hash is k modulo n
                (the same hash as the bulk ingest's partitions).
        """
        self.bus = bus
        self.engine = engine
        self.clock = clock
        self.metrics = metrics
        self.partition = partition
        self.sink = EventSink(consumers=[police])
        self.taken = 0  # SOS messages committed (then acknowledged)
        self.last_seconds = 0.0  # receipt to commit of the last batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Connect and start the lane's thread."""
        self.bus.start()
        self._thread = threading.Thread(target=self._run, name="sos-lane", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the link is up and subscribed."""
        return self.bus.wait_subscribed(timeout)

    def stop(self) -> None:
        """Stop taking SOS; what is not committed stays unacknowledged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.bus.stop()

    # -- loop ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(initial=0.1, cap=2.0)
        pending: list[Received] = []
        while not self._stop.is_set():
            if not pending:
                pending = self._collect()
            if not pending:
                continue
            try:
                self.process(pending)
            except sa.exc.DataError:  # a value the database refuses: no retry helps
                logger.exception("SOS lane: the database refused a batch's data")
                pending = self._apart(pending, backoff)
                continue
            except sa.exc.SQLAlchemyError as exc:
                self._db_failed(exc, len(pending), backoff)
                continue
            except Exception:
                logger.exception("SOS lane: a batch failed; taking it one by one")
                pending = self._apart(pending, backoff)
                continue
            backoff.reset()
            for msg in pending:
                self.bus.ack(msg)
            pending = []

    def _db_failed(self, exc: Exception, count: int, backoff: Backoff) -> None:
        if self.metrics is not None:
            self.metrics.db_errors.inc()
        delay = backoff.next()
        logger.warning(
            "SOS commit failed (%s); retrying %d in %.1fs",
            type(exc).__name__,
            count,
            delay,
        )
        self._idle(delay)

    def _apart(self, msgs: list[Received], backoff: Backoff) -> list[Received]:
        """Take each message on its own; drop (ack) those the code cannot take.

        One handheld's SOS that passes the schema but breaks the alarm desk
        (a bug, a body nobody foresaw) or holds a value the database refuses
        (retrying would block every SOS after it for good) is logged and
        counted as ``unprocessable``; the others in its batch and after it go on.

        Returns:
            The messages left for a retry (from the first database error on).
        """
        for i, msg in enumerate(msgs):
            try:
                self.process([msg])
            except sa.exc.DataError:
                logger.exception(
                    "Dropped an SOS on %.120s: its data is refused", msg.topic
                )
                self._count_rejected("unprocessable")
            except sa.exc.SQLAlchemyError as exc:
                self._db_failed(exc, len(msgs) - i, backoff)
                return msgs[i:]
            except Exception:
                logger.exception(
                    "Dropped an SOS on %.120s: it cannot be taken", msg.topic
                )
                self._count_rejected("unprocessable")
            self.bus.ack(msg)
        backoff.reset()
        return []

    def _collect(self) -> list[Received]:
        """Wait (serving the link) for SOS; return every one that is here."""
        out: list[Received] = []
        while not self._stop.is_set():
            while True:
                try:
                    item = self.bus.inbox.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(item, Received):
                    continue
                if self._mine(item.topic):
                    out.append(item)
                else:
                    self.bus.ack(item)  # another partition's: its lane has it
            if out:
                return out
            self.bus.poll(0.05)
        return out

    def _mine(self, topic: str) -> bool:
        """Whether this lane's partition holds the topic's device."""
        if self.partition is None:
            return True
        try:
            device = topics.parse(topic).device
        except PayloadError:
            return True  # taken, to be refused with its reason
        k, n = self.partition
        return zlib.crc32(device.encode()) % n == k

    def _idle(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < until:
            self.bus.poll(min(0.1, max(0.0, until - time.monotonic())))

    # -- one transaction ---------------------------------------------------------
    def process(self, msgs: list[Received]) -> None:
        """Check, store and apply the SOS; raises on database errors (no ack)."""
        started, cpu = time.perf_counter(), time.thread_time()
        now = self.clock.now()
        envelopes: list[Envelope] = []
        for msg in msgs:
            result = triage(msg.topic, msg.payload, now=now, max_bytes=_MAX_BYTES)
            if isinstance(result, Rejected):
                logger.warning(
                    "Rejected SOS on %.120s (%s): %s",
                    msg.topic,
                    result.reason,
                    result.detail,
                )
                self._count_rejected(result.reason)
                continue
            envelopes.append(result.envelope)
        with Session(self.engine) as session:
            stored = self.sink.accept(session, envelopes, now)
            session.commit()
        self.last_seconds = time.perf_counter() - started
        cpu = time.thread_time() - cpu
        stored.deliver()  # the alerts leave now, before anything is counted
        for reason, n in stored.refused.items():
            self._count_rejected(reason, n)
        self.taken += len(msgs)
        if self.metrics is not None:
            self.metrics.received.labels("sos").inc(len(envelopes))
            self.metrics.stored.inc(len(stored.new))
            self.metrics.duplicates.inc(stored.duplicates)
        # The lane's own CPU beside the wall time: what is left waited for
        # the database, the GIL or a core.
        logger.info(
            "SOS lane: %d message(s), %d new, committed in %.1f ms (%.1f ms CPU)",
            len(msgs),
            len(stored.new),
            self.last_seconds * 1000,
            cpu * 1000,
        )

    def _count_rejected(self, reason: str, n: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(reason).inc(n)
