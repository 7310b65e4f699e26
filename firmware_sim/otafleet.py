"""A fleet of nodes that take updates, on real MQTT, HTTP, TUF and slots.

Each virtual node is its own MQTT 5 connection (aiomqtt, all in one asyncio
loop) and runs the real :class:`edge.ota.client.OtaClient`: central's
``ota`` command, the director and image repositories over HTTP with
python-tuf, deltas, A/B slots in its own directory, ``ota`` events on the
real contract. Only the node's own work and its restart are simulated: a
"restart" is a new client after :meth:`Slots.recover`, and the health check
passes unless the release is a fault drill. It stands in for a county's
fleet in ``bench.ota``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiomqtt

from edge.clock import SystemClock
from edge.ota.client import OtaClient
from edge.ota.fetch import HttpFetcher
from edge.ota.slots import Slots
from edge.protocol import encode, make, topics
from edge.settings import NodeSettings

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class FleetLog:
    """What the virtual nodes reported, for the benchmark to read."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def states(self, release: str) -> dict[str, str]:
        """The last reported state of each node for ``release``."""
        out: dict[str, str] = {}
        for device, body in self.events:
            if body.get("release") == release:
                out[device] = str(body.get("state"))
        return out

    def bytes_for(self, release: str) -> list[int]:
        """Bytes each node downloaded for ``release``."""
        return [
            int(body.get("bytes", 0))
            for _device, body in self.events
            if body.get("release") == release and body.get("state") == "installed"
        ]


def node_settings(device: str, kind: str, root: Path, ota_url: str) -> NodeSettings:
    """A virtual node's settings: its own data and slots directories."""
    return NodeSettings(
        device_id=device,
        kind=kind,  # type: ignore[arg-type]
        data_dir=root / device,
        ota_url=ota_url,
        ota_slots_dir=root / device / "release",
        ota_settle_s=2.0,
        ota_deadline_s=5.0,
    )


async def _node(
    settings: NodeSettings,
    *,
    host: str,
    port: int,
    log: FleetLog,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    device = settings.device_id
    clock = SystemClock()
    fetcher = HttpFetcher(settings.data_dir / "ota" / "partial")
    pending: list[dict[str, Any]] = []

    def boot() -> OtaClient:
        Slots(settings.ota_slots_dir or settings.data_dir).recover(clock.now())
        return OtaClient(settings, clock=clock, emit=pending.append, fetcher=fetcher)

    client = boot()
    async with aiomqtt.Client(
        host,
        port,
        identifier=device,
        protocol=aiomqtt.ProtocolVersion.V5,
        keepalive=120,
    ) as mqtt:
        await mqtt.subscribe(f"{topics.ROOT}/{device}/cmd/+", qos=1)
        ready.set()

        async def listen() -> None:
            async for message in mqtt.messages:
                try:
                    env = json.loads(bytes(message.payload))
                    args = env["body"]["args"]
                    client.command(args)
                except Exception as exc:  # noqa: BLE001 - a refusal is reported, not raised
                    logger.warning("%s refused a command: %s", device, exc)

        listener = asyncio.create_task(listen())
        try:
            while not stop.is_set():
                client.step(deferral=lambda: None, health=lambda: None)
                while pending:
                    body = pending.pop(0)
                    log.events.append((device, body))
                    env = make(device, "ota", body, now=clock.now())
                    await mqtt.publish(topics.event(device, "ota"), encode(env), qos=1)
                if client.restart:
                    client = boot()  # the supervisor starts the node again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.1)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def run_fleet(
    fleet: list[NodeSettings],
    *,
    host: str,
    port: int,
    log: FleetLog,
    stop: asyncio.Event,
    connected: asyncio.Event,
    batch: int = 50,
) -> None:
    """Run the virtual nodes until ``stop``; ``connected`` once all are up."""
    tasks = []
    for start in range(0, len(fleet), batch):
        readies = []
        for settings in fleet[start : start + batch]:
            ready = asyncio.Event()
            readies.append(ready)
            tasks.append(
                asyncio.create_task(
                    _node(
                        settings,
                        host=host,
                        port=port,
                        log=log,
                        ready=ready,
                        stop=stop,
                    )
                )
            )
        await asyncio.gather(*(r.wait() for r in readies))
    connected.set()
    await asyncio.gather(*tasks)


class FleetRunner:
    """The virtual fleet in a thread of its own, for a benchmark or a test."""

    def __init__(
        self, fleet: list[NodeSettings], *, host: str, port: int, log: FleetLog
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop_event, self.connected = asyncio.Event(), asyncio.Event()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(
                run_fleet(
                    fleet,
                    host=host,
                    port=port,
                    log=log,
                    stop=self.stop_event,
                    connected=self.connected,
                ),
            ),
            daemon=True,
        )

    def start(self) -> None:
        """Start the fleet (returns at once; ``connected`` is set when all are up)."""
        self.thread.start()

    def stop(self) -> None:
        """Stop every node and close the loop."""
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)
        self.loop.close()
