"""SOS benchmark: from the long press to the alert on the nearby handhelds.

One Mosquitto, central as its own process (``baling central``, SQLite), a
county of handhelds: ``--handhelds`` light virtual ones (each its own MQTT
connection, in a separate process, reporting positions every 5 s and
listening for alerts) plus ``--agents`` real handheld agents (real link,
outbox, GNSS on a pty, SOS pin) whose buttons are pressed ``--presses``
times at random. The SOS latency of each alert is the time from the moment
the long press is recognised (the SOS's ``pressed_at``, which every alert
carries) to the alert's arrival on an officer's handheld within R. In the
same run and on the same broker, under the same load, a bare MQTT round
trip (QoS 1 there and back) is measured: the limit, since an SOS crosses
the broker twice.

    python -m bench.sos [--handhelds 1000] [--agents 20] [--presses 200]

Last line: ``sos_p99_ms=<ms> limit_p99_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session, col, func, select

from baling.broker import Mosquitto, free_port
from central.audit.log import load_or_create_key
from central.db import make_engine, migrate
from central.fleet import registry
from central.main import COMMAND_KEY_FILE
from central.police.models import Alarm, Officer
from edge.clock import SystemClock
from edge.node import build_agent
from edge.protocol.signing import public_key_text
from firmware_sim.fleet import Arrivals, Virtual, round_trips, run_handhelds
from firmware_sim.gnss import GnssSimulator, Noise, open_pty, walking
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    import sqlalchemy as sa

LAT, LON = 29.145, 113.118
SPREAD = 0.018  # ±2 km around 荣家湾


class EventLike(Protocol):
    """A multiprocessing event, as the child sees it."""

    def set(self) -> None:
        """Set it."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for it."""
        ...


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def fleet_main(
    *,
    port: int,
    fleet: list[tuple[str, float, float]],
    run_s: float,
    out: str,
    ready: EventLike,
    stop: EventLike,
) -> None:
    """Child process: the virtual handhelds, then the bare round trips."""
    arrivals = Arrivals()

    async def go() -> list[float]:
        halt, connected = asyncio.Event(), asyncio.Event()
        virtual = [Virtual(d, la, lo) for d, la, lo in fleet]
        runner = asyncio.create_task(
            run_handhelds(
                virtual,
                host="127.0.0.1",
                port=port,
                report_s=5.0,
                arrivals=arrivals,
                stop=halt,
                connected=connected,
            )
        )
        await connected.wait()
        ready.set()
        rtt = await round_trips("127.0.0.1", port, count=200, gap_s=run_s / 200)
        await asyncio.to_thread(stop.wait)
        halt.set()
        await runner
        return rtt

    rtt = asyncio.run(go())
    alerts = {f"{k[0]}|{k[1]}": v for k, v in arrivals.latencies_ms.items()}
    Path(out).write_text(json.dumps({"alerts": alerts, "rtt_ms": rtt}))


def wait_http(url: str, timeout: float) -> None:
    """Wait until central answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"central did not answer at {url}")


@dataclass
class World:
    """What the benchmark started, to stop it again."""

    tmp: Path
    broker: Mosquitto
    engine: sa.Engine
    central: subprocess.Popen[bytes]
    http: int


def start_world(devices: list[str]) -> World:
    """Broker, database with every handheld registered, central as a process."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-sos-"))
    broker = Mosquitto(data_dir=tmp / "broker")
    broker.start()
    url = f"sqlite:///{tmp / 'central.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    now = SystemClock().now()
    with Session(engine) as session:
        for device in devices:
            registry.register(
                session, device_id=device, kind="handheld", site="rjw", now=now
            )
    http = free_port()
    env = {
        **os.environ,
        "CENTRAL_DATABASE_URL": url,
        "CENTRAL_JWT_SECRET": "b" * 48,
        "CENTRAL_DATA_DIR": str(tmp / "central"),
        "CENTRAL_BROKER_PORT": str(broker.port),
        "CENTRAL_HTTP_PORT": str(http),
        # The command centre is not in this benchmark: no repeats or escalations.
        "CENTRAL_POLICE_SOS_REPEAT_S": "600",
        "CENTRAL_POLICE_SOS_ESCALATE_S": "3600",
    }
    central = subprocess.Popen(
        [sys.executable, "-m", "baling.cli", "central"],
        env=env,
        stderr=(tmp / "central.log").open("wb"),
    )
    wait_http(f"http://127.0.0.1:{http}/healthz", 60)
    return World(tmp, broker, engine, central, http)


def start_agents(
    world: World, places: list[tuple[str, float, float]], stop: threading.Event
) -> list[Path]:
    """Real handheld agents (GNSS on a pty, SOS pin); return their pins."""
    key = public_key_text(
        load_or_create_key(world.tmp / "central", COMMAND_KEY_FILE).public_key()
    )
    pins = []
    for n, (device, lat, lon) in enumerate(places):
        pty = open_pty()
        pin = world.tmp / f"{device}.pin"
        settings = HandheldSettings(
            device_id=device,
            kind="handheld",
            data_dir=world.tmp / device,
            broker_port=world.broker.port,
            command_keys=[key],
            require_signed_commands=True,
            gnss_url=pty.path,
            sos_button=f"file:{pin}",
        )
        agent = build_agent(HandheldAgent, settings)
        quiet = Noise(poor_rate=0, dropout_rate=0, corrupt_rate=0)
        sim = GnssSimulator(walking(), noise=quiet, seed=n)
        sim.hold = (lat, lon)
        threading.Thread(target=sim.run, args=(pty.master, stop), daemon=True).start()
        threading.Thread(target=agent.run, args=(stop,), daemon=True).start()
        pins.append(pin)
    return pins


def wait_placed(engine: sa.Engine, total: int, timeout: float) -> int:
    """Wait until central knows where every handheld is."""
    deadline = time.monotonic() + timeout
    placed = 0
    while time.monotonic() < deadline:
        with Session(engine) as session:
            placed = session.exec(
                select(func.count())
                .select_from(Officer)
                .where(col(Officer.lat).is_not(None))
            ).one()
        if placed >= total:
            break
        time.sleep(0.5)
    return placed


def press_at_random(
    pins: list[Path], presses: int, gap: float, rng: random.Random
) -> None:
    """Long-press random handhelds' SOS buttons, ``gap`` seconds apart."""

    def press(pin: Path) -> None:
        set_level(pin, pressed=True)  # the default long press is 2 s
        time.sleep(2.3)
        set_level(pin, pressed=False)

    busy_until = [0.0] * len(pins)
    for _ in range(presses):
        while not (
            free := [i for i, t in enumerate(busy_until) if t <= time.monotonic()]
        ):
            time.sleep(0.05)
        i = rng.choice(free)
        # Past the 5 s cancel window: a new press is a new SOS, not a cancel.
        busy_until[i] = time.monotonic() + 8.0
        threading.Thread(target=press, args=(pins[i],), daemon=True).start()
        time.sleep(gap)


def report(engine: sa.Engine, data: dict[str, Any], presses: int) -> None:
    """Print the figures; the last line is the one the issue names."""
    with Session(engine) as session:
        alarms = session.exec(select(Alarm).where(Alarm.kind == "sos")).all()
        # Alerts to the real agents land in their inboxes, not in the fleet's log.
        expected = {
            f"sos:{a.key}|{x['device']}"
            for a in alarms
            for x in a.alerted
            if x["device"].startswith("hh-")
        }
    sos_ms = [v for k, v in data["alerts"].items() if k in expected]
    rtt = data["rtt_ms"]
    print(f"SOS raised: {len(alarms)} of {presses} presses")
    print(
        "alerts to virtual handhelds within R (nearest 20 per SOS): "
        f"{len(expected)} sent, {len(sos_ms)} arrived"
    )
    print(
        "press → alert on nearby handhelds: "
        f"p50 {statistics.median(sos_ms):.1f} ms, p99 {pct(sos_ms, 0.99):.1f} ms, "
        f"max {max(sos_ms):.1f} ms"
    )
    print(
        "bare MQTT round trip (same broker, same load): "
        f"p50 {statistics.median(rtt):.1f} ms, p99 {pct(rtt, 0.99):.1f} ms"
    )
    print(f"sos_p99_ms={pct(sos_ms, 0.99):.1f} limit_p99_ms={pct(rtt, 0.99):.1f}")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--handhelds", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between presses")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # each SOS is logged as a warning
    rng = random.Random(2026)

    def place() -> tuple[float, float]:
        return LAT + rng.uniform(-SPREAD, SPREAD), LON + rng.uniform(-SPREAD, SPREAD)

    fleet = [(f"hh-{i:05d}", *place()) for i in range(args.handhelds)]
    agents_at = [(f"agent-{i:02d}", *place()) for i in range(args.agents)]
    world = start_world([d for d, _, _ in fleet + agents_at])
    ctx = mp.get_context("spawn")
    ready, done, stop = ctx.Event(), ctx.Event(), threading.Event()
    results = world.tmp / "fleet.json"
    run_s = max(30.0, args.presses * args.gap + 10)
    child = ctx.Process(
        target=fleet_main,
        kwargs={
            "port": world.broker.port,
            "fleet": fleet,
            "run_s": run_s,
            "out": str(results),
            "ready": ready,
            "stop": done,
        },
    )
    try:
        child.start()
        pins = start_agents(world, agents_at, stop)
        ready.wait(300)
        placed = wait_placed(world.engine, len(fleet) + len(agents_at), 300)
        print(f"handhelds online and placed: {placed} of {len(fleet) + len(agents_at)}")
        press_at_random(pins, args.presses, args.gap, rng)
        time.sleep(5.0)
        done.set()
        child.join(timeout=120)
        stop.set()
        report(world.engine, json.loads(results.read_text()), args.presses)
    finally:
        if child.is_alive():
            child.terminate()
        world.central.terminate()
        world.central.wait(timeout=30)
        world.broker.stop(kill=True)


if __name__ == "__main__":
    main()
