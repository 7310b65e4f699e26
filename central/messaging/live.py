"""Live updates for the consoles: a thread-safe fan-out to asyncio queues.

Ingest threads call :meth:`Broadcaster.publish`; each SSE connection holds a
subscription. A slow browser loses old updates (bounded queue) rather than
holding memory; the page re-reads the list on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class Broadcaster:
    """Fan out JSON-ready dicts from any thread to asyncio subscribers."""

    def __init__(self, *, maxsize: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subs: set[
            tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]
        ] = set()
        self._maxsize = maxsize

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """Register the running loop's new queue."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._maxsize)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Forget a queue."""
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not q}

    @property
    def subscribers(self) -> int:
        """How many streams listen now (tests wait for theirs to start)."""
        with self._lock:
            return len(self._subs)

    def publish(self, item: dict[str, Any]) -> None:
        """Send ``item`` to every subscriber (dropped for a full one)."""
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(_offer, q, item)


def _offer(q: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        q.put_nowait(item)
