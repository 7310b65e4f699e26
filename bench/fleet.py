"""Fleet benchmark: a county's devices on one broker, central scaled out.

10,000 virtual devices (``firmware_sim.loadgen``: real MQTT 5 connections,
asyncio clients in a few processes, each kind with its message mix) run
for ``--minutes`` against Mosquitto and ``--workers`` central processes
(``baling central``) that split the ingest as a site does (each worker
one partition of the devices, on a plain persistent subscription that
Mosquitto keeps over a restart) and commit to PostgreSQL (a fresh schema
of the ``test`` database). It prints devices online (central's presence),
events stored per second, p99 latency from publish (the envelope's ``ts``)
to ingest (``received_at``, set as the batch is taken, committed with
it), the workers' RSS, and the reconciliation of every event the broker
acknowledged against what central stored: lost and duplicated.

Then the scaling runs: the same mix from 1,000 devices fills the workers'
sessions while they are down, and 1, then 2 workers drain it with the
machine to themselves (three times each, alternating; medians); the ratio
of events stored per second is ``scale_2w``. Last, the fault tests marked
``long`` (a network cut of minutes), which CI skips.

    python -m bench.fleet [--devices 10000] [--minutes 10] [--rate 150]

Last line:
``fleet_devices=<n> fleet_lost=<n> fleet_dup=<n> fleet_p99_ms=<ms> scale_2w=<ratio>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import sqlalchemy as sa
from sqlmodel import Session

from baling.broker import Mosquitto, free_port
from central.db import make_engine, migrate
from central.models import Device
from firmware_sim.loadgen import device_id, kind_of

if TYPE_CHECKING:
    from collections.abc import Callable

PG_URL = os.environ.get(
    "CENTRAL_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Result:
    """One load run's figures."""

    devices_online: int
    sent: int
    stored: int
    lost: int
    dup: int
    stored_per_s: float
    p50_ms: float
    p99_ms: float
    rss_mb: list[float]
    connected: int
    failures: int


@dataclass(frozen=True)
class Load:
    """One run's fleet and workers."""

    devices: int
    rate: float  # events/s, whole fleet
    seconds: float
    workers: int
    procs: int  # load generator processes
    work: Path


def _schema() -> tuple[str, str]:
    name = f"fleet_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{sep}options=-csearch_path%3D{name}"


def _drop(name: str) -> None:
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
    admin.dispose()


def _register(url: str, devices: int) -> sa.Engine:
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add_all(
            Device(id=device_id(n), kind=kind_of(n), site="load", created_at=now)
            for n in range(devices)
        )
        session.commit()
    return engine


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _start_workers(
    url: str, port: int, workers: int, work: Path, *, together: bool = False
) -> list[subprocess.Popen[bytes]]:
    """Start ``workers`` central processes.

    One at a time (each migrates first) unless ``together``: the schema is
    migrated, start them in the same second so none drains a backlog alone.
    """
    procs = []
    waits = []
    for w in range(workers):
        http = free_port()
        env = {
            **os.environ,
            "CENTRAL_DATABASE_URL": url,
            "CENTRAL_JWT_SECRET": "f" * 40,
            "CENTRAL_DATA_DIR": str(work / f"central-{w}"),
            "CENTRAL_BROKER_PORT": str(port),
            "CENTRAL_HTTP_PORT": str(http),
            "CENTRAL_WORKERS": "1",
            # the site layout: each worker one partition of the devices
            "CENTRAL_INGEST_PARTITION": f"{w + 1}/{workers}",
            "CENTRAL_WORKER_ID": f"w{w}",  # its own persistent session
            "CENTRAL_INGEST_PRESENCE": "true" if w == 0 else "false",
            "CENTRAL_OFFLINE_AFTER_S": "180",
        }
        log = (work / f"central-{w}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "baling.cli", "central"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        waits.append((http, f"central worker {w} did not start: see {log.name}"))
        if not together:
            _wait_healthy(*waits[-1])
    for http, why in waits if together else []:
        _wait_healthy(http, why)
    return procs


def _wait_healthy(http: int, why: str) -> None:
    """Until the worker answers (one at a time: each migrates first)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"http://127.0.0.1:{http}/healthz", timeout=2).is_success:
                return
        time.sleep(0.3)
    raise RuntimeError(why)


def _fleet(port: int, load: Load) -> list[subprocess.Popen[str]]:
    """Start the load generators: the devices split over ``load.procs``."""
    devices, procs = load.devices, load.procs
    per = devices // procs
    gens = []
    for k in range(procs):
        count = per if k < procs - 1 else devices - per * (procs - 1)
        gens.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "firmware_sim.loadgen",
                    "--first",
                    str(k * per),
                    "--count",
                    str(count),
                    "--port",
                    str(port),
                    "--rate",
                    str(load.rate * count / devices),
                    "--seconds",
                    str(load.seconds),
                    "--sent",
                    str(load.work / f"sent-{k}.txt"),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    return gens


@dataclass(frozen=True)
class Sent:
    """What the load generators did: ids the broker acknowledged, connections."""

    ids: set[str]
    connected: int
    failures: int


def _sent(gens: list[subprocess.Popen[str]], work: Path) -> Sent:
    """Once the generators end: what they sent and how many connected."""
    connected = failures = 0
    for g in gens:
        out, _ = g.communicate()
        if g.returncode != 0:
            raise RuntimeError(f"a load generator failed ({g.returncode}): {out}")
        tally = dict(part.partition("=")[::2] for part in out.split())
        connected += int(tally.get("connected", 0))
        failures += int(tally.get("failures", 0))
    sent: set[str] = set()
    for k in range(len(gens)):
        sent.update(x for x in (work / f"sent-{k}.txt").read_text().split() if x)
    return Sent(sent, connected, failures)


def _stop(centrals: list[subprocess.Popen[bytes]]) -> None:
    for c in centrals:
        c.terminate()
    for c in centrals:
        c.wait(timeout=30)


def _run(url: str, engine: sa.Engine, port: int, load: Load) -> Result:
    """The fleet against running workers, reconciled."""
    centrals = _start_workers(url, port, load.workers, load.work)
    gens = _fleet(port, load)
    rss, online = _watch(gens, centrals, engine)
    sent = _sent(gens, load.work)
    rows = _drained(engine, sent.ids)
    _stop(centrals)
    return _reconciled(rows, sent, online, rss)


def _backlog(url: str, engine: sa.Engine, port: int, load: Load) -> Result:
    """Central's own throughput: a backlog drained with the machine to itself.

    The fleet fills the workers' sessions while they are down, then they
    drain it. On two cores a load generator running alongside would take
    the CPU a second worker needs, and measure itself.
    """
    workers, work = load.workers, load.work
    _stop(_start_workers(url, port, workers, work))  # their sessions, subscribed
    sent = _sent(_fleet(port, load), work)
    centrals = _start_workers(url, port, workers, work, together=True)
    rows = _drained(engine, sent.ids)
    rss = [[_rss_mb(c.pid)] for c in centrals]
    _stop(centrals)
    return _reconciled(rows, sent, 0, rss)


def _reconciled(
    rows: list[Any], sent_by: Sent, online: int, rss: list[list[float]]
) -> Result:
    """Sent against stored: lost, duplicated, rate and latency."""
    sent = sent_by.ids
    stored_ids = [str(r[0]) for r in rows]
    mine = [r for r in rows if str(r[0]) in sent]
    lat = sorted((_utc(r[2]) - _utc(r[1])).total_seconds() * 1000 for r in mine) or [
        0.0
    ]
    took = [_utc(r[2]).timestamp() for r in mine] or [0.0]
    span = max(max(took) - min(took), 1e-9)
    return Result(
        devices_online=online,
        sent=len(sent),
        stored=len(mine),
        lost=len(sent - set(stored_ids)),
        dup=len(stored_ids) - len(set(stored_ids)) + len(set(stored_ids) - sent),
        stored_per_s=len(mine) / span,
        p50_ms=statistics.median(lat),
        p99_ms=lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        rss_mb=[max(r or [0.0]) for r in rss],
        connected=sent_by.connected,
        failures=sent_by.failures,
    )


def _drained(engine: sa.Engine, sent: set[str]) -> list[Any]:
    """Every stored event, once the ingest has taken all it can.

    What the broker still queues for the workers is not lost: wait while
    the count still grows (up to 20 minutes), stop 30 s after it stops.
    """
    rows: list[Any] = []
    last, idle_since = -1, time.monotonic()
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = list(
                conn.execute(sa.text("SELECT id, ts, received_at FROM event")).all()
            )
        got = len({str(r[0]) for r in rows} & sent)
        if got >= len(sent):
            break
        if got > last:
            last, idle_since = got, time.monotonic()
        elif time.monotonic() - idle_since > 30:
            break
        time.sleep(3)
    return rows


def _watch(
    gens: list[subprocess.Popen[str]],
    centrals: list[subprocess.Popen[bytes]],
    engine: sa.Engine,
) -> tuple[list[list[float]], int]:
    """While the fleet runs: each worker's RSS, and the most devices online."""
    rss: list[list[float]] = [[] for _ in centrals]
    online = 0
    while any(g.poll() is None for g in gens):
        time.sleep(5)
        for i, c in enumerate(centrals):
            rss[i].append(_rss_mb(c.pid))
        with engine.connect() as conn:
            now_online = conn.execute(
                sa.text("SELECT COUNT(*) FROM device WHERE online")
            ).scalar_one()
        online = max(online, int(now_online))
    return rss, online


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _measured(
    load: Load, run: Callable[[str, sa.Engine, int, Load], Result] = _run
) -> Result:
    """One ``run`` on a fresh schema of the ``test`` database and a fresh broker.

    A fresh broker: a worker's session must not carry one run's backlog
    into the next.
    """
    load.work.mkdir(parents=True, exist_ok=True)
    schema, url = _schema()
    broker = Mosquitto(data_dir=load.work / "broker")
    broker.start()
    try:
        engine = _register(url, load.devices)
        try:
            return run(url, engine, broker.port, load)
        finally:
            engine.dispose()
    finally:
        broker.stop()
        _drop(schema)


def _long_faults() -> str:
    """Run the fault tests marked ``long`` (minutes each); their summary line."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "long",
            "-q",
            "--no-cov",
            "-p",
            "no:cacheprovider",
            str(Path(__file__).resolve().parents[1] / "tests"),
        ],
        env={**os.environ, "BALING_LONG": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = run.stdout.strip().splitlines() or ["(no output)"]
    if run.returncode != 0:
        sys.stdout.write(run.stdout[-4000:])
    return f"long fault tests: {lines[-1].strip('= ')}"


def main() -> None:
    """The fleet run, then the scaling runs; print the figures."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=150.0, help="events/s, whole fleet")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--procs", type=int, default=4, help="load generator processes")
    p.add_argument("--scale-devices", type=int, default=1000)
    p.add_argument("--scale-rate", type=float, default=3000.0)
    p.add_argument("--scale-seconds", type=float, default=20.0)
    p.add_argument("--scale-repeats", type=int, default=3)
    p.add_argument("--no-long", action="store_true", help="skip the long fault tests")
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # broker and clients
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    r = _measured(
        Load(
            args.devices,
            args.rate,
            args.minutes * 60,
            args.workers,
            args.procs,
            work / "fleet",
        )
    )
    print(
        f"fleet: {args.devices} devices ({r.connected} connected, {r.failures} "
        f"failed), {r.devices_online} online at central; {args.minutes:g} min at "
        f"{args.rate:g} events/s offered; {r.sent} events acknowledged by the "
        f"broker, {r.stored} stored ({r.stored_per_s:.0f}/s); lost {r.lost}, "
        f"duplicated {r.dup}; publish→ingest p50 {r.p50_ms:.0f} ms, p99 "
        f"{r.p99_ms:.0f} ms; worker RSS "
        f"{', '.join(f'{m:.0f}' for m in r.rss_mb)} MB",
        flush=True,
    )
    rates: dict[int, list[float]] = {1: [], 2: []}
    for rep in range(args.scale_repeats):
        for workers in (1, 2) if rep % 2 == 0 else (2, 1):
            s = _measured(
                Load(
                    args.scale_devices,
                    args.scale_rate,
                    args.scale_seconds,
                    workers,
                    2,
                    work / f"scale-{rep}-{workers}",
                ),
                run=_backlog,
            )
            rates[workers].append(s.stored_per_s)
            print(
                f"scale: {workers} worker(s) drain a backlog of {s.sent} events "
                f"from {args.scale_devices} devices: {s.stored_per_s:.0f} stored/s; "
                f"lost {s.lost}, duplicated {s.dup}",
                flush=True,
            )
    one, two = (statistics.median(rates[w]) for w in (1, 2))
    print(
        f"scale: median {one:.0f} stored/s with 1 worker, {two:.0f} with 2 "
        f"({os.cpu_count()} cores for the workers, PostgreSQL and the broker)",
        flush=True,
    )
    if not args.no_long:
        print(f"faults: {_long_faults()}", flush=True)
    print(
        f"fleet_devices={r.devices_online} fleet_lost={r.lost} fleet_dup={r.dup} "
        f"fleet_p99_ms={r.p99_ms:.0f} scale_2w={two / one:.2f}"
    )


if __name__ == "__main__":
    main()
