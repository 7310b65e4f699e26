"""SOS benchmark: from the long press to the alert on the nearby handhelds.

One Mosquitto; central as a site runs it: ``--workers`` central processes
(``baling central``, each one partition of the devices, the first keeping
presence and timers) on PostgreSQL (a fresh schema of the ``test``
database; ``--db sqlite`` for one process on SQLite, the laptop layout); a
county of handhelds: ``--handhelds`` light virtual ones (each its own MQTT
connection, in separate processes, reporting positions every 5 s and
listening for alerts) plus ``--agents`` real handheld agents (real link,
outbox, GNSS on a pty, SOS pin) whose buttons are pressed ``--presses``
times at random; and beside them ``--fleet`` devices of ``bench.fleet``'s
load (``firmware_sim.loadgen``: every kind's connection, state, telemetry
and events at ``--fleet-rate`` events/s in all).

The SOS latency of each alert is the time from the moment the long press
is recognised (the SOS's ``pressed_at``, which every alert carries) to the
alert's arrival on an officer's handheld within R. In the same run and on
the same broker, under the same load, a bare MQTT round trip (QoS 1 there
and back) is measured: the limit, since an SOS crosses the broker twice.
Where the time goes: press → central's SOS lane (outbox, broker), the lane
(its transaction), lane → the officer's handheld (signing, broker); and the
bulk lane beside it (positions stored per second, their lag).

    python -m bench.sos [--handhelds 1000] [--fleet 0] [--agents 20]
        [--presses 200] [--workers 2] [--db postgres|sqlite] [--lane-process]

``--lane-process`` runs the SOS lane in a central process of its own
(``CENTRAL_SOS_LANE``) instead of a thread beside each process's ingest.

Last line: ``sos_p99_ms=<ms> limit_p99_ms=<ms> sos_raised=<n>/<presses>
fleet_devices=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiomqtt
import httpx2
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from baling.broker import Mosquitto, free_port
from bench.fleet import Load, _drop, _fleet, _schema, _start_workers
from central.audit.log import load_or_create_key
from central.db import make_engine, migrate
from central.main import COMMAND_KEY_FILE
from central.models import Device
from central.police.models import Alarm, Officer
from edge.clock import SystemClock
from edge.node import build_agent
from edge.protocol.signing import public_key_text
from firmware_sim.fleet import Arrivals, Virtual, round_trips, run_handhelds
from firmware_sim.gnss import GnssSimulator, Noise, open_pty, walking
from firmware_sim.loadgen import device_id, kind_of
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

LAT, LON = 29.145, 113.118
SPREAD = 0.018  # ±2 km around 荣家湾
PER_PROCESS = 2000  # virtual handhelds per asyncio process
LANE_LINE = re.compile(
    r"SOS lane: \d+ message\(s\), (\d+) new, committed in ([\d.]+) ms "
    r"\(([\d.]+) ms CPU\)"
)


class EventLike(Protocol):
    """A multiprocessing event, as the child sees it."""

    def set(self) -> None:
        """Set it."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for it."""
        ...


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def fleet_main(
    *,
    port: int,
    fleet: list[tuple[str, float, float]],
    rtt_count: int,
    run_s: float,
    out: str,
    ready: EventLike,
    stop: EventLike,
) -> None:
    """Child process: some virtual handhelds, and (in one) the bare round trips."""
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
        rtt: list[float] = []
        if rtt_count:
            rtt = await round_trips(
                "127.0.0.1", port, count=rtt_count, gap_s=run_s / rtt_count
            )
        await asyncio.to_thread(stop.wait)
        halt.set()
        try:
            await runner
        except (aiomqtt.MqttError, OSError) as exc:
            # A virtual handheld gave out (the machine could not carry the
            # load): say so, and keep what arrived before.
            failures.append(f"{type(exc).__name__}: {exc}")
        return rtt

    failures: list[str] = []
    rtt = asyncio.run(go())
    alerts = {f"{k[0]}|{k[1]}": v for k, v in arrivals.latencies_ms.items()}
    Path(out).write_text(
        json.dumps({"alerts": alerts, "rtt_ms": rtt, "failures": failures})
    )


def wait_http(url: str, timeout: float) -> None:
    """Wait until central answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url, timeout=1).is_success:
                return
        time.sleep(0.2)
    raise SystemExit(f"central did not answer at {url}")


@dataclass
class World:
    """What the benchmark started, to stop it again."""

    tmp: Path
    broker: Mosquitto
    engine: sa.Engine
    centrals: list[subprocess.Popen[bytes]]
    data_dirs: list[Path]
    schema: str | None = None
    gens: list[subprocess.Popen[str]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop everything it started, the database schema last."""
        procs: list[subprocess.Popen[Any]] = [*self.gens, *self.centrals]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.broker.stop(kill=True)
        self.engine.dispose()
        if self.schema is not None:
            _drop(self.schema)

    def cpu_s(self, children: list[tuple[Any, EventLike]]) -> dict[str, list[float]]:
        """CPU seconds (user + system) each part has used so far."""
        broker = self.broker.proc.pid if self.broker.proc is not None else 0
        parts = {
            "central": [p.pid for p in self.centrals],
            "broker": [broker],
            "virtual handhelds": [c.pid for c, _ in children],
            "fleet load": [g.pid for g in self.gens],
            "this process (agents)": [os.getpid()],
        }
        return {name: [_cpu_s(pid) for pid in pids] for name, pids in parts.items()}


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def register(engine: sa.Engine, handhelds: list[str], fleet: int) -> None:
    """Every handheld and every device of the fleet's load, in the registry."""
    now = SystemClock().now()
    with Session(engine) as session:
        session.add_all(
            Device(id=d, kind="handheld", site="rjw", created_at=now) for d in handhelds
        )
        session.add_all(
            Device(id=device_id(n), kind=kind_of(n), site="load", created_at=now)
            for n in range(fleet)
        )
        session.commit()


def start_world(
    devices: list[str], *, fleet: int, workers: int, db: str, lane_process: bool
) -> World:
    """Broker, database with every device registered, central's processes.

    ``lane_process``: the SOS lane in a central process of its own (no
    ingest workers) instead of a thread beside each process's ingest.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench-sos-"))
    broker = Mosquitto(data_dir=tmp / "broker")
    broker.start()
    schema = None
    if db == "postgres":
        schema, url = _schema()
    else:
        url = f"sqlite:///{tmp / 'central.sqlite3'}"
        workers = 1
    engine = make_engine(url)
    migrate(engine)
    register(engine, devices, fleet)
    # The command centre is not in this benchmark: no repeats or escalations.
    os.environ["CENTRAL_POLICE_SOS_REPEAT_S"] = "600"
    os.environ["CENTRAL_POLICE_SOS_ESCALATE_S"] = "3600"
    if lane_process:
        os.environ["CENTRAL_SOS_LANE"] = "false"
    if workers == 1:
        centrals = [start_central(tmp, url, broker.port)]
        dirs = [tmp / "central"]
    else:
        centrals = _start_workers(url, broker.port, workers, tmp)
        dirs = [tmp / f"central-{w}" for w in range(workers)]
    if lane_process:
        lane = {
            "CENTRAL_SOS_LANE": "true",
            "CENTRAL_WORKERS": "0",
            "CENTRAL_INGEST_PRESENCE": "false",
            "CENTRAL_WORKER_ID": "sos",
        }
        centrals.append(start_central(tmp, url, broker.port, name="sos", env=lane))
        dirs.append(tmp / "central-sos")
    return World(tmp, broker, engine, centrals, dirs, schema)


def start_central(
    tmp: Path,
    url: str,
    port: int,
    *,
    name: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """One central process (the laptop layout, or the SOS lane's own)."""
    http = free_port()
    folder = f"central-{name}" if name else "central"
    env = {
        **os.environ,
        "CENTRAL_DATABASE_URL": url,
        "CENTRAL_JWT_SECRET": "b" * 48,
        "CENTRAL_DATA_DIR": str(tmp / folder),
        "CENTRAL_BROKER_PORT": str(port),
        "CENTRAL_HTTP_PORT": str(http),
        **(env or {}),
    }
    central = subprocess.Popen(
        [sys.executable, "-m", "baling.cli", "central"],
        env=env,
        stdout=(tmp / f"central-{name or 0}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{http}/healthz", 60)
    return central


def start_agents(
    world: World, places: list[tuple[str, float, float]], stop: threading.Event
) -> list[Path]:
    """Real handheld agents (GNSS on a pty, SOS pin); return their pins."""
    keys = [
        public_key_text(load_or_create_key(d, COMMAND_KEY_FILE).public_key())
        for d in world.data_dirs
    ]
    pins = []
    for n, (device, lat, lon) in enumerate(places):
        pty = open_pty()
        pin = world.tmp / f"{device}.pin"
        settings = HandheldSettings(
            device_id=device,
            kind="handheld",
            data_dir=world.tmp / device,
            broker_port=world.broker.port,
            command_keys=keys,
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
                .where(
                    col(Officer.lat).is_not(None),
                    ~col(Officer.device).startswith("v"),  # not the fleet's
                )
            ).one()
        if placed >= total:
            break
        time.sleep(0.5)
    return placed


def wait_raised(engine: sa.Engine, presses: int, timeout: float) -> int:
    """Wait until every press has raised its SOS (then a little for alerts)."""
    deadline = time.monotonic() + timeout
    raised = 0
    while time.monotonic() < deadline:
        with Session(engine) as session:
            raised = session.exec(
                select(func.count()).select_from(Alarm).where(Alarm.kind == "sos")
            ).one()
        if raised >= presses:
            break
        time.sleep(1.0)
    time.sleep(3.0)
    return raised


def wait_online(engine: sa.Engine, total: int, timeout: float) -> int:
    """Wait until central's presence shows the fleet's devices online."""
    deadline = time.monotonic() + timeout
    online = 0
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            online = int(
                conn.execute(
                    sa.text("SELECT COUNT(*) FROM device WHERE online AND site='load'")
                ).scalar_one()
            )
        if online >= total:
            break
        time.sleep(1.0)
    return online


def resolve_open(engine: sa.Engine, device: str) -> None:
    """Close the device's open SOS, as the command centre does once it is handled.

    An officer has one open SOS at a time (a new press joins it), so an
    officer pressed again is first taken off the desk, as in the field.
    """
    with Session(engine) as session:
        for alarm in session.exec(
            select(Alarm).where(
                Alarm.kind == "sos",
                Alarm.device == device,
                col(Alarm.state).in_(["raised", "acknowledged", "assigned"]),
            )
        ).all():
            alarm.state = "resolved"
            alarm.closed_at = datetime.now(UTC)
            alarm.closed_by = "bench"
            session.add(alarm)
        session.commit()


def press_at_random(
    engine: sa.Engine,
    pins: list[Path],
    presses: int,
    gap: float,
    rng: random.Random,
) -> None:
    """Long-press random handhelds' SOS buttons, ``gap`` seconds apart."""

    def press(pin: Path) -> None:
        set_level(pin, pressed=True)  # the default long press is 2 s
        time.sleep(3.0)  # a loaded machine may run the agent's loop late
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
        resolve_open(engine, pins[i].stem)
        threading.Thread(target=press, args=(pins[i],), daemon=True).start()
        time.sleep(gap)


def positions(engine: sa.Engine, since: float) -> tuple[int, list[float]]:
    """Positions stored since ``since`` (epoch s) and their lag (ts → received)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT ts, received_at FROM event WHERE type = 'position'")
        ).all()
    lag = []
    for ts, received in rows:
        got = _epoch(received)
        if got >= since:
            lag.append((got - _epoch(ts)) * 1000)
    return len(lag), lag


def _epoch(value: Any) -> float:  # noqa: ANN401 - a driver's datetime
    from datetime import UTC  # noqa: PLC0415

    return float((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def lane_ms(world: World) -> tuple[list[float], list[float]]:
    """The SOS lane's receipt-to-commit times and its CPU, from central's logs."""
    wall: list[float] = []
    cpu: list[float] = []
    for log in world.tmp.glob("central-*.log"):
        for m in LANE_LINE.finditer(log.read_text(errors="replace")):
            if int(m[1]):
                wall.append(float(m[2]))
                cpu.append(float(m[3]))
    return wall, cpu


@dataclass
class Run:
    """What happened while the buttons were pressed."""

    data: dict[str, Any]
    presses: int
    seconds: float
    cpu_s: dict[str, list[float]]
    positions: int
    position_lag_ms: list[float]
    lane_ms: list[float]
    lane_cpu_ms: list[float]
    fleet_online: int
    placed: int


def report(engine: sa.Engine, run: Run) -> None:
    """Print the figures; the last line is the one the issue names."""
    with Session(engine) as session:
        alarms = session.exec(select(Alarm).where(Alarm.kind == "sos")).all()
        # Alerts to the real agents land in their inboxes, not in the fleet's log.
        expected = {
            f"sos:{a.key}|{x['device']}": a
            for a in alarms
            for x in a.alerted
            if x["device"].startswith("hh-")
        }
    arrived = {k: v for k, v in run.data["alerts"].items() if k in expected}
    sos_ms = list(arrived.values())
    to_central = [(_epoch(a.received_at) - _epoch(a.raised_at)) * 1000 for a in alarms]
    to_officer = [
        v - (_epoch(expected[k].received_at) - _epoch(expected[k].raised_at)) * 1000
        for k, v in arrived.items()
    ]
    rtt = run.data["rtt_ms"]
    cores = "; ".join(
        f"{name} {' + '.join(f'{c / run.seconds:.2f}' for c in used)}"
        for name, used in run.cpu_s.items()
        if used
    )
    for failure in run.data["failures"]:
        print(f"load generator gave out: {failure}")
    print(f"SOS raised: {len(alarms)} of {run.presses} presses")
    print(
        "alerts to virtual handhelds within R (nearest 20 per SOS): "
        f"{len(expected)} sent, {len(sos_ms)} arrived"
    )
    print(
        "where the time goes (p50 / p99 ms): press → SOS lane (outbox, broker) "
        f"{statistics.median(to_central or [0]):.1f} / {pct(to_central, 0.99):.1f}; "
        f"lane commit {statistics.median(run.lane_ms or [0]):.1f} / "
        f"{pct(run.lane_ms, 0.99):.1f} (its own CPU "
        f"{statistics.median(run.lane_cpu_ms or [0]):.1f} / "
        f"{pct(run.lane_cpu_ms, 0.99):.1f}); lane → officer's handheld (send, broker) "
        f"{statistics.median(to_officer or [0]):.1f} / {pct(to_officer, 0.99):.1f}"
    )
    print(
        f"bulk lane beside it: {run.positions / run.seconds:.0f} positions/s "
        f"stored, lag p50 {statistics.median(run.position_lag_ms or [0]):.0f} ms, "
        f"p99 {pct(run.position_lag_ms, 0.99):.0f} ms"
    )
    print(
        f"CPU while pressing (cores): {cores}; machine load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        "press → alert on nearby handhelds: "
        f"p50 {statistics.median(sos_ms or [0]):.1f} ms, "
        f"p99 {pct(sos_ms, 0.99):.1f} ms, max {max(sos_ms or [0]):.1f} ms"
    )
    print(
        "bare MQTT round trip (same broker, same load): "
        f"p50 {statistics.median(rtt or [0]):.1f} ms, p99 {pct(rtt, 0.99):.1f} ms"
    )
    print(
        f"sos_p99_ms={pct(sos_ms, 0.99):.1f} limit_p99_ms={pct(rtt, 0.99):.1f} "
        f"sos_raised={len(alarms)}/{run.presses} "
        f"fleet_devices={run.placed + run.fleet_online}"
    )


def spawn_fleet(
    ctx: Any,  # noqa: ANN401 - a multiprocessing context
    fleet: list[tuple[str, float, float]],
    world: World,
    *,
    run_s: float,
    stop: EventLike,
) -> list[tuple[Any, EventLike]]:
    """The virtual handhelds' processes (not started) and their ready events."""
    children = []
    for k, first in enumerate(range(0, len(fleet), PER_PROCESS)):
        ready = ctx.Event()
        child = ctx.Process(
            target=fleet_main,
            kwargs={
                "port": world.broker.port,
                "fleet": fleet[first : first + PER_PROCESS],
                "rtt_count": 200 if k == 0 else 0,
                "run_s": run_s,
                "out": str(world.tmp / f"fleet-{k}.json"),
                "ready": ready,
                "stop": stop,
            },
        )
        children.append((child, ready))
    return children


def collect(children: list[tuple[Any, EventLike]], world: World) -> dict[str, Any]:
    """The alerts' arrivals and the round trips, once the children end."""
    data: dict[str, Any] = {"alerts": {}, "rtt_ms": [], "failures": []}
    for k, (child, _) in enumerate(children):
        child.join(timeout=120)
        try:
            part = json.loads((world.tmp / f"fleet-{k}.json").read_text())
        except OSError:
            data["failures"].append(f"virtual handheld process {k} died")
            continue
        data["alerts"].update(part["alerts"])
        data["rtt_ms"] += part["rtt_ms"]
        data["failures"] += part["failures"]
    return data


def parse_args() -> argparse.Namespace:
    """The command line."""
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--handhelds", type=int, default=1000)
    ap.add_argument("--fleet", type=int, default=0, help="bench.fleet's devices")
    ap.add_argument("--fleet-rate", type=float, default=150.0, help="events/s")
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between presses")
    ap.add_argument("--workers", type=int, default=2, help="central processes")
    ap.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument(
        "--lane-process",
        action="store_true",
        help="the SOS lane in a central process of its own (CENTRAL_SOS_LANE)",
    )
    return ap.parse_args()


def main() -> None:
    """Run the benchmark and print its figures."""
    args = parse_args()
    logging.basicConfig(level=logging.ERROR)  # each SOS is logged as a warning
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # broker and clients
    rng = random.Random(2026)

    def place() -> tuple[float, float]:
        return LAT + rng.uniform(-SPREAD, SPREAD), LON + rng.uniform(-SPREAD, SPREAD)

    fleet = [(f"hh-{i:05d}", *place()) for i in range(args.handhelds)]
    agents_at = [(f"agent-{i:02d}", *place()) for i in range(args.agents)]
    world = start_world(
        [d for d, _, _ in fleet + agents_at],
        fleet=args.fleet,
        workers=args.workers,
        db=args.db,
        lane_process=args.lane_process,
    )
    ctx = mp.get_context("spawn")
    done, stop = ctx.Event(), threading.Event()
    press_s = args.presses * args.gap
    run_s = max(30.0, press_s + 10)
    children = spawn_fleet(ctx, fleet, world, run_s=run_s, stop=done)
    try:
        if args.fleet:
            world.gens = _fleet(
                world.broker.port,
                Load(args.fleet, args.fleet_rate, 3600, args.workers, 2, world.tmp),
            )
            online = wait_online(world.engine, args.fleet, 300)
            print(f"fleet's load online at central: {online} of {args.fleet}")
        for child, ready in children:
            child.start()
            ready.wait(300)
        pins = start_agents(world, agents_at, stop)
        placed = wait_placed(world.engine, len(fleet) + len(agents_at), 300)
        print(f"handhelds online and placed: {placed} of {len(fleet) + len(agents_at)}")
        time.sleep(5.0)  # one full round of positions before the first press
        cpu0, t0, wall0 = world.cpu_s(children), time.monotonic(), time.time()
        press_at_random(world.engine, pins, args.presses, args.gap, rng)
        time.sleep(5.0)
        seconds = time.monotonic() - t0
        cpu = {
            name: [b - a for a, b in zip(cpu0[name], used, strict=True)]
            for name, used in world.cpu_s(children).items()
        }
        # A late SOS is not a lost one: wait (a minute at most) for the rest.
        wait_raised(world.engine, args.presses, 60)
        fleet_online = wait_online(world.engine, 0, 1) if args.fleet else 0
        stored, lag = positions(world.engine, wall0)
        done.set()
        data = collect(children, world)
        lane_wall, lane_cpu = lane_ms(world)
        stop.set()
        report(
            world.engine,
            Run(
                data=data,
                presses=args.presses,
                seconds=seconds,
                cpu_s=cpu,
                positions=stored,
                position_lag_ms=lag,
                lane_ms=lane_wall,
                lane_cpu_ms=lane_cpu,
                fleet_online=fleet_online,
                placed=placed,
            ),
        )
    finally:
        for child, _ in children:
            if child.is_alive():
                child.terminate()
        world.stop()


if __name__ == "__main__":
    main()
