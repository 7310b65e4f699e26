"""A county's fleet on the wire: thousands of virtual devices, real MQTT each.

Every virtual device is its own MQTT 5 connection (aiomqtt; thousands share
one asyncio loop, and a few processes share a fleet) speaking the real
contract: retained ``state`` heartbeats (online, kind, health), telemetry
(QoS 0), events through QoS 1 — each kind its own: detector bins from loop
detectors, positions from handhelds, faults raised and cleared by cameras,
kiosks and cabinets — and replies to central's commands (MQTT 5 response
topic and correlation data, as the node runtime answers).

The fleet's event rate is paced as a total (``rate`` events per second,
spread over the devices). Every event the broker acknowledged is written
to ``sent`` (its envelope id) so a benchmark or a fault test can reconcile
what was sent against what central stored: every event exactly once.

    python -m firmware_sim.loadgen --first 0 --count 5000 --port 1883
        --rate 250 --seconds 600 --sent sent-0.txt   (one line)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from edge.protocol import encode, make, topics
from edge.protocol.messages import Health, ReplyBody, StateBody, to_body

logger = logging.getLogger(__name__)

# The county's mix (shares of the fleet) and each kind's event.
KINDS = (
    ("handheld", 0.35),
    ("loop_detector", 0.25),
    ("camera", 0.2),
    ("kiosk", 0.1),
    ("signal_controller", 0.1),
)


def device_id(n: int) -> str:
    """The n-th virtual device's id; its kind follows from n."""
    return f"v{kind_of(n)[:3]}-{n:05d}"


def kind_of(n: int) -> str:
    """The kind of the n-th device (the mix of :data:`KINDS`, interleaved)."""
    slot = (n * 7919) % 100 / 100  # spread kinds evenly over any id range
    edge = 0.0
    for kind, share in KINDS:
        edge += share
        if slot < edge:
            return kind
    return KINDS[-1][0]


def event_for(
    kind: str, n: int, seq: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    """(type, body) of a device's next event, as its kind sends it."""
    now = datetime.now(UTC)
    if kind == "handheld":
        return "position", {
            "lat": 29.145 + rng.gauss(0, 0.01),
            "lon": 113.118 + rng.gauss(0, 0.01),
            "fix_ts": now.isoformat(),
            "speed_mps": round(rng.uniform(0, 12), 1),
            "hdop": 0.9,
        }
    if kind == "loop_detector":
        lanes = [
            {
                "lane": lane,
                "count": rng.randint(0, 30),
                "flow_vph": rng.randint(0, 1800),
                "occupancy_pct": round(rng.uniform(0, 40), 1),
                "speed_kmh": round(rng.uniform(20, 60), 1),
                "headway_s": 2.5,
            }
            for lane in range(1, 5)
        ]
        return "detector", {"start": now.isoformat(), "seconds": 60, "lanes": lanes}
    code = {
        "camera": "lens_dirty",
        "kiosk": "printer_paper",
        "signal_controller": "door_open",
    }
    return "fault", {"code": code[kind], "active": seq % 2 == 0, "detail": f"n={n}"}


@dataclass
class Tally:
    """What one process's devices did."""

    connected: int = 0
    events: int = 0
    telemetry: int = 0
    states: int = 0
    replies: int = 0
    failures: int = 0
    sent: list[str] = field(default_factory=list)


def _state(device: str, kind: str, started: float) -> bytes:
    body = StateBody(
        online=True,
        kind=kind,  # type: ignore[arg-type]
        version="load-1",
        health=Health(uptime_s=round(time.monotonic() - started, 1)),
    )
    return encode(make(device, "state", to_body(body), now=datetime.now(UTC)))


async def _device(
    n: int,
    *,
    host: str,
    port: int,
    interval_s: float,
    heartbeat_s: float,
    tally: Tally,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    device, kind = device_id(n), kind_of(n)
    rng = random.Random(n)  # noqa: S311 - simulation
    started = time.monotonic()
    offline = encode(
        make(
            device,
            "state",
            to_body(StateBody(online=False, kind=kind)),  # type: ignore[arg-type]
            now=datetime.now(UTC),
        )
    )
    will = aiomqtt.Will(topics.state(device), offline, qos=1, retain=True)
    try:
        async with aiomqtt.Client(
            host,
            port,
            identifier=device,
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=120,
            will=will,
            timeout=60,
        ) as client:
            await client.subscribe(f"{topics.ROOT}/{device}/cmd/+", qos=1)
            await client.publish(
                topics.state(device), _state(device, kind, started), qos=1, retain=True
            )
            tally.connected += 1
            ready.set()
            listener = asyncio.create_task(_answer(client, device, tally))
            try:
                await _run(
                    client,
                    n,
                    kind=kind,
                    rng=rng,
                    interval_s=interval_s,
                    heartbeat_s=heartbeat_s,
                    tally=tally,
                    stop=stop,
                    started=started,
                )
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    except aiomqtt.MqttError as exc:
        tally.failures += 1
        logger.warning("%s: %s", device, exc)
    finally:
        ready.set()


async def _run(
    client: aiomqtt.Client,
    n: int,
    *,
    kind: str,
    rng: random.Random,
    interval_s: float,
    heartbeat_s: float,
    tally: Tally,
    stop: asyncio.Event,
    started: float,
) -> None:
    device = device_id(n)
    loop = asyncio.get_running_loop()
    next_event = loop.time() + rng.uniform(0, interval_s)
    next_beat = loop.time() + rng.uniform(0, heartbeat_s)
    seq = 0
    while not stop.is_set():
        now = loop.time()
        if now >= next_beat:
            next_beat += heartbeat_s
            await client.publish(
                topics.state(device), _state(device, kind, started), qos=1, retain=True
            )
            tally.states += 1
            telemetry = {"cpu_pct": rng.uniform(5, 60), "temp_c": rng.uniform(30, 70)}
            await client.publish(
                topics.telemetry(device),
                encode(make(device, "telemetry", telemetry, now=datetime.now(UTC))),
                qos=0,
            )
            tally.telemetry += 1
        if now >= next_event:
            next_event += rng.expovariate(1 / interval_s)
            seq += 1
            type_, body = event_for(kind, n, seq, rng)
            env = make(device, type_, body, now=datetime.now(UTC))
            await client.publish(topics.event(device, type_), encode(env), qos=1)
            tally.events += 1  # the broker acknowledged it (QoS 1)
            tally.sent.append(str(env.id))
        wait = min(next_event, next_beat) - loop.time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)


async def _answer(client: aiomqtt.Client, device: str, tally: Tally) -> None:
    """Answer every command as the node runtime does (ping → pong)."""
    async for message in client.messages:
        props = message.properties
        target = getattr(props, "ResponseTopic", None) or topics.reply(device)
        name = str(message.topic).rsplit("/", 1)[-1]
        reply = ReplyBody(command=name, ok=True, result={"pong": True})
        out = make(device, "reply", to_body(reply), now=datetime.now(UTC))
        reply_props = None
        correlation = getattr(props, "CorrelationData", None)
        if correlation is not None:
            from paho.mqtt.packettypes import PacketTypes  # noqa: PLC0415
            from paho.mqtt.properties import Properties  # noqa: PLC0415

            reply_props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            reply_props.CorrelationData = correlation
        await client.publish(target, encode(out), qos=1, properties=reply_props)
        tally.replies += 1


async def run_fleet(
    first: int,
    count: int,
    *,
    host: str,
    port: int,
    rate: float,
    seconds: float,
    heartbeat_s: float = 60.0,
    batch: int = 200,
    tally: Tally | None = None,
    stop: asyncio.Event | None = None,
) -> Tally:
    """Run devices ``first`` … ``first + count - 1`` for ``seconds``.

    ``rate`` is these devices' total events per second. Devices connect in
    batches of ``batch`` (a county's nodes do not all boot in one second).
    """
    tally = tally or Tally()
    stop = stop or asyncio.Event()
    interval = count / rate if rate > 0 else float("inf")
    tasks = []
    for start in range(first, first + count, batch):
        readies = []
        for n in range(start, min(start + batch, first + count)):
            ready = asyncio.Event()
            readies.append(ready)
            tasks.append(
                asyncio.create_task(
                    _device(
                        n,
                        host=host,
                        port=port,
                        interval_s=interval,
                        heartbeat_s=heartbeat_s,
                        tally=tally,
                        ready=ready,
                        stop=stop,
                    )
                )
            )
        await asyncio.gather(*(r.wait() for r in readies))
    logger.info("%d devices connected (%d failed)", tally.connected, tally.failures)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return tally


def main() -> None:
    """One process of a fleet: run, then write what was sent."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="events/s, all devices")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--heartbeat-s", type=float, default=60.0)
    p.add_argument("--sent", type=Path, required=True, help="event ids written here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Thousands of clients closing at once: paho asks the loop to watch
    # sockets aiomqtt has just closed, and asyncio logs each refusal with a
    # traceback. Harmless (the client is gone); it would bury the figures.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    tally = asyncio.run(
        run_fleet(
            args.first,
            args.count,
            host=args.host,
            port=args.port,
            rate=args.rate,
            seconds=args.seconds,
            heartbeat_s=args.heartbeat_s,
        )
    )
    args.sent.write_text("\n".join(tally.sent) + "\n", encoding="utf-8")
    sys.stdout.write(
        f"connected={tally.connected} failures={tally.failures} events={tally.events} "
        f"states={tally.states} telemetry={tally.telemetry} replies={tally.replies}\n"
    )


if __name__ == "__main__":
    main()
