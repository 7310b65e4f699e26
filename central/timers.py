"""The timer worker: the services' clocks tick here, beside ingest, never inside it.

Police SOS repeats and escalations and beat timers, OTA waves, complaint
deadlines (催办, 督办升级), plate-read retention, adaptive signal timing and
the offline sweep are each a :class:`Timer` — an object whose ``tick`` does
what is due and returns. One :class:`TimerWorker` thread calls every timer
about once a second, each in its own transaction, so a slow timer delays
the others but never the ingest, and a failing one is logged and skipped.

Timers keep their state in the database, but some act once per run (an
escalation, a 催办) and must not race another process doing the same: one
process of a site runs them — the one with ``CENTRAL_INGEST_PRESENCE=true``
(see docs/operations.md). Each timer decides itself how often it does work
(``tick`` is cheap when nothing is due).

Left to others: what each timer decides (the services and their pure
cores); ingest (:mod:`central.ingest.worker`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    import sqlalchemy as sa

logger = logging.getLogger(__name__)


class Timer(Protocol):
    """Something with work that falls due: run what is due, then return."""

    def tick(self, engine: sa.Engine) -> None:
        """Do what is due now (each timer reads its own clock)."""
        ...


class TimerWorker:
    """One thread that ticks every timer about once a ``period_s``."""

    def __init__(
        self, *, engine: sa.Engine, timers: Sequence[Timer], period_s: float = 1.0
    ) -> None:
        """Build the worker; nothing runs until :meth:`start`.

        Args:
            engine: the database the timers open their sessions on.
            timers: ticked in this order each round.
            period_s: the pause between rounds (wall time, not the clock's).
        """
        self.engine = engine
        self.timers = list(timers)
        self.period_s = period_s
        self.rounds = 0  # rounds completed, for tests and diagnostics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the timer running now returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def tick_all(self) -> None:
        """Tick every timer once; one failing is logged and the rest still run."""
        for timer in self.timers:
            try:
                timer.tick(self.engine)
            except Exception:  # a service's timer bug must not stop the others
                logger.exception("Timer of %s failed", type(timer).__name__)
        self.rounds += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick_all()
            self._stop.wait(self.period_s)
