"""Assemble and run a node: settings → link, outbox, clock → agent → loop.

This is the ``main()`` every kind shares; it installs the SIGTERM/SIGINT
handlers so a node stops gracefully (state ``offline`` published, in-flight
events given a moment to be acknowledged, outbox closed).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from edge.agent import Agent, offline_will
from edge.bus import PahoBus, TlsFiles
from edge.clock import Clock, SystemClock
from edge.outbox import Outbox
from edge.protocol import topics

if TYPE_CHECKING:
    from edge.settings import NodeSettings

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=Agent)


def build_agent(
    agent_cls: type[A],
    settings: NodeSettings,
    *,
    clock: Clock | None = None,
    **extra: Any,  # noqa: ANN401 - passed through to the kind's own constructor
) -> A:
    """Build an agent of ``agent_cls`` with a real link and outbox."""
    clock = clock or SystemClock()
    tls = None
    if settings.ca_file is not None:
        tls = TlsFiles(
            ca_file=settings.ca_file,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
        )
    bus = PahoBus(
        client_id=settings.device_id,
        host=settings.broker_host,
        port=settings.broker_port,
        subscriptions=[(f, 1) for f in topics.node_inbox(settings.device_id)],
        will=offline_will(
            settings.device_id, agent_cls.kind, settings.version, clock=clock
        ),
        tls=tls,
        keepalive=settings.keepalive_s,
        inflight=settings.inflight,
    )
    outbox = Outbox(
        settings.data_dir / "outbox.sqlite3", max_bytes=settings.outbox_max_bytes
    )
    return agent_cls(settings=settings, bus=bus, outbox=outbox, clock=clock, **extra)


def run_agent(agent: Agent, stop: threading.Event | None = None) -> None:
    """Run ``agent`` until SIGTERM/SIGINT (or ``stop``)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    logger.info("Node %s (%s) starting", agent.settings.device_id, agent.kind)
    agent.run(stop)
