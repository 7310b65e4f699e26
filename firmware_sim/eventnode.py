"""A simulated node that produces numbered events through the real runtime.

It is the demo node of ``baling up`` and the load of the durability tests:
an :class:`edge.Agent` of kind ``sim`` whose "device" is a counter. Its
position is saved atomically with the events (the outbox cursor), so after a
``kill -9`` it resumes exactly where it stopped: no number is skipped or
produced twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from edge.agent import Agent
from edge.protocol.messages import NodeConfig, SimConfig

if TYPE_CHECKING:
    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox
    from edge.settings import NodeSettings

logger = logging.getLogger(__name__)

CURSOR = "sim.seq"


class SimAgent(Agent):
    """Emit ``{"seq": n}`` events: a burst of ``total``, or one per interval."""

    kind: ClassVar[str] = "sim"
    config_model: ClassVar[type[NodeConfig]] = SimConfig

    def __init__(
        self,
        *,
        settings: NodeSettings,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        total: int = 0,
        batch: int = 200,
        pad: int = 0,
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.total = total
        self.batch = batch
        self.pad = "x" * pad
        saved = self.outbox.cursor(CURSOR)
        self.seq = int(saved) if saved is not None else 0
        self._next_tick = self.clock.monotonic()

    def step(self) -> None:
        """Emit the next burst slice, or the periodic event."""
        if self.seq < self.total:
            if self.outbox.depth > 20 * self.batch:
                return  # let the link drain before producing more
            end = min(self.total, self.seq + self.batch)
            self._emit_range(end)
            return
        if self.total:
            return
        interval = getattr(self.config, "event_interval_s", 0.0)
        now = self.clock.monotonic()
        if interval > 0 and now >= self._next_tick:
            self._next_tick = now + interval
            self._emit_range(self.seq + 1)

    def _emit_range(self, end: int) -> None:
        items = [
            ("tick", {"seq": n, "pad": self.pad}) for n in range(self.seq + 1, end + 1)
        ]
        self.emit_many(items, cursor=(CURSOR, str(end)))
        self.seq = end
