"""Many light handhelds on real MQTT connections, multiplexed in one asyncio loop.

Each virtual handheld is its own MQTT 5 client (aiomqtt) with its own client
id: it reports positions on the real contract (envelope, ``event/position``,
QoS 1) and listens on its own ``cmd/+`` for alerts, recording when each
first arrives. It stands in for the hundreds of officers of a county in the
SOS benchmark; the officers whose path is measured run the real agent.
:func:`round_trips` measures the bare broker round trip under the same load
(the limit an SOS cannot beat).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from edge.protocol import encode, make, topics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Virtual:
    """One virtual handheld and where it stands."""

    device: str
    lat: float
    lon: float


@dataclass
class Arrivals:
    """First arrival of each alert on each handheld: latency in ms."""

    latencies_ms: dict[tuple[str, str], float] = field(default_factory=dict)
    repeats: int = 0

    def record(self, device: str, payload: bytes) -> None:
        """Take one command payload; alerts carry the SOS's ``raised_at``."""
        now = datetime.now(UTC)
        try:
            env = json.loads(payload)
            args = env["body"]["args"]
            key = (str(args["alert_id"]), device)
            raised = datetime.fromisoformat(args["raised_at"])
        except (ValueError, KeyError, TypeError):
            return
        if key in self.latencies_ms:
            self.repeats += 1
            return
        self.latencies_ms[key] = (now - raised).total_seconds() * 1000


def position_payload(v: Virtual, rng: random.Random) -> bytes:
    """A position event as a handheld's outbox would send it."""
    now = datetime.now(UTC)
    body = {
        "lat": v.lat + rng.gauss(0, 2e-5),
        "lon": v.lon + rng.gauss(0, 2e-5),
        "fix_ts": now.isoformat(),
        "speed_mps": 1.2,
        "hdop": 0.9,
    }
    return encode(make(v.device, "position", body, now=now))


async def _handheld(
    v: Virtual,
    *,
    host: str,
    port: int,
    report_s: float,
    arrivals: Arrivals,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    rng = random.Random(v.device)  # noqa: S311 - simulation
    async with aiomqtt.Client(
        host,
        port,
        identifier=v.device,
        protocol=aiomqtt.ProtocolVersion.V5,
        keepalive=120,
    ) as client:
        await client.subscribe(f"{topics.ROOT}/{v.device}/cmd/+", qos=1)
        await client.publish(
            topics.event(v.device, "position"), position_payload(v, rng), qos=1
        )
        ready.set()

        async def listen() -> None:
            async for message in client.messages:
                arrivals.record(v.device, bytes(message.payload))

        listener = asyncio.create_task(listen())
        try:
            await asyncio.sleep(rng.uniform(0, report_s))
            while not stop.is_set():
                await client.publish(
                    topics.event(v.device, "position"), position_payload(v, rng), qos=1
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=report_s)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def run_handhelds(
    fleet: list[Virtual],
    *,
    host: str,
    port: int,
    report_s: float,
    arrivals: Arrivals,
    stop: asyncio.Event,
    connected: asyncio.Event,
    batch: int = 100,
) -> None:
    """Run the virtual handhelds until ``stop``; ``connected`` once all are up."""
    tasks = []
    for start in range(0, len(fleet), batch):
        readies = []
        for v in fleet[start : start + batch]:
            ready = asyncio.Event()
            readies.append(ready)
            tasks.append(
                asyncio.create_task(
                    _handheld(
                        v,
                        host=host,
                        port=port,
                        report_s=report_s,
                        arrivals=arrivals,
                        ready=ready,
                        stop=stop,
                    )
                )
            )
        await asyncio.gather(*(r.wait() for r in readies))
    connected.set()
    await asyncio.gather(*tasks)


async def round_trips(host: str, port: int, *, count: int, gap_s: float) -> list[float]:
    """Bare MQTT round trips (QoS 1 out, QoS 1 back) in milliseconds."""
    out: list[float] = []
    async with (
        aiomqtt.Client(
            host, port, identifier="rtt-echo", protocol=aiomqtt.ProtocolVersion.V5
        ) as echo,
        aiomqtt.Client(
            host, port, identifier="rtt-probe", protocol=aiomqtt.ProtocolVersion.V5
        ) as probe,
    ):
        await echo.subscribe("bench/rtt/ping", qos=1)
        await probe.subscribe("bench/rtt/pong", qos=1)

        async def reflect() -> None:
            async for message in echo.messages:
                await echo.publish("bench/rtt/pong", message.payload, qos=1)

        reflector = asyncio.create_task(reflect())
        try:
            for i in range(count):
                sent = time.perf_counter()
                await probe.publish("bench/rtt/ping", str(i).encode(), qos=1)
                async for message in probe.messages:
                    if bytes(message.payload) == str(i).encode():
                        break
                out.append((time.perf_counter() - sent) * 1000)
                await asyncio.sleep(gap_s)
        finally:
            reflector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reflector
    return out
