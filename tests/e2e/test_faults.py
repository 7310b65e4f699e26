"""Faults survived, reconciled: every event sent is stored exactly once.

Each test runs real nodes (the ``sim`` event node on the real runtime and
outbox, numbering its events ``seq`` 1…N) against a real Mosquitto and
central, breaks something under load, and then reads central's event table:
the numbers must be exactly 1…N for every node — nothing lost, nothing
doubled. A central worker killed with SIGKILL mid-batch; PostgreSQL
restarted under load; the PostgreSQL primary lost under load and its
synchronous replica promoted (deploy/cluster/'s files); a group of nodes
cut off from the network and coming back with their backlog; a node's
outbox disk full; a node's clock far off.
The broker restarted under load with two workers on partitions of the
devices. (One worker through broker restarts and a node's kill -9:
``test_durability.py``.)

The network cut lasts 20 s in CI; its ``long`` variant (three minutes) is
skipped unless ``BALING_LONG=1``, which ``python -m bench.fleet`` sets when
it runs the long fault tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import sqlalchemy as sa
from support.api import register
from support.waiting import wait_until
from test_deploy import DEPLOY, env_file

from baling.broker import free_port
from central.db import make_engine, migrate
from edge.node import build_agent
from edge.settings import NodeSettings
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def seqs(engine: sa.Engine, device: str) -> list[int]:
    """The ``seq`` of every stored event of ``device``, in storage order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT body FROM event WHERE device = :d"), {"d": device}
        ).all()
    return sorted((json.loads(b) if isinstance(b, str) else b)["seq"] for (b,) in rows)


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one())


def reconcile(engine: sa.Engine, totals: dict[str, int]) -> None:
    """Every node's events 1…N, each exactly once."""
    for device, total in totals.items():
        got = seqs(engine, device)
        assert len(got) == len(set(got)), f"{device}: an event was stored twice"
        assert got == list(range(1, total + 1)), (
            f"{device}: {total - len(set(got))} of {total} events missing"
        )


def node_config(tmp: Path, device: str, port: int) -> Path:
    conf = tmp / f"{device}.toml"
    conf.write_text(
        f'device_id = "{device}"\nkind = "sim"\ndata_dir = "{tmp / device}"\n'
        f'broker_port = {port}\nlog_level = "WARNING"\n',
        encoding="utf-8",
    )
    return conf


def start_node(conf: Path, total: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "sim",
            "eventnode",
            "--config",
            str(conf),
            "--total",
            str(total),
            "--pad",
            "120",
        ]
    )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:  # slow to stop under load: never leave it
            p.kill()
            p.wait(timeout=15)


# -- a central worker killed mid-batch ----------------------------------------------
def start_worker(
    url: str,
    port: int,
    worker: str,
    tmp: Path,
    *,
    presence: bool,
    partition: str | None = None,
) -> subprocess.Popen[bytes]:
    """A ``baling central`` process: on the shared group, or on ``partition``."""
    http = free_port()
    layout = (
        {"CENTRAL_INGEST_SHARED": "true"}
        if partition is None
        else {"CENTRAL_INGEST_PARTITION": partition}
    )
    env = {
        **os.environ,
        "CENTRAL_DATABASE_URL": url,
        "CENTRAL_JWT_SECRET": "k" * 40,
        "CENTRAL_DATA_DIR": str(tmp / worker),
        "CENTRAL_BROKER_PORT": str(port),
        "CENTRAL_HTTP_PORT": str(http),
        "CENTRAL_WORKER_ID": worker,
        **layout,
        "CENTRAL_INGEST_PRESENCE": "true" if presence else "false",
        "CENTRAL_INGEST_BATCH": "200",
    }
    proc = subprocess.Popen([sys.executable, "-m", "baling.cli", "central"], env=env)

    def healthy() -> bool:
        try:
            answer = httpx2.get(f"http://127.0.0.1:{http}/healthz", timeout=2)
        except httpx2.TransportError:
            return False
        return answer.is_success

    wait_until(healthy, 60, f"central worker {worker}")
    return proc


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_central_worker_killed_mid_batch_loses_nothing(
    db_url: str, broker: Mosquitto, tmp_path: Path
) -> None:
    total = 6000
    engine = make_engine(db_url)
    migrate(engine)
    register(engine, "sim-a", "sim-b")
    workers = [
        start_worker(db_url, broker.port, "wa", tmp_path, presence=True),
        start_worker(db_url, broker.port, "wb", tmp_path, presence=False),
    ]
    nodes = [
        start_node(node_config(tmp_path, d, broker.port), total)
        for d in ("sim-a", "sim-b")
    ]
    try:
        wait_until(lambda: stored(engine) >= 2000, 90, "2,000 events")
        workers[1].send_signal(signal.SIGKILL)  # mid-stream: mid-batch
        workers[1].wait()
        wait_until(lambda: stored(engine) >= 4000, 90, "4,000 events on one worker")
        # it comes back under its own session: what it held is delivered again
        workers[1] = start_worker(db_url, broker.port, "wb", tmp_path, presence=False)
        wait_until(lambda: stored(engine) >= 2 * total, 120, f"{2 * total} events")
        time.sleep(1.0)  # a late duplicate would show up now
    finally:
        stop(nodes)
        stop(workers)
    reconcile(engine, {"sim-a": total, "sim-b": total})
    engine.dispose()


# -- the broker restarted under load, several workers ------------------------------
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_broker_restarted_under_load_with_workers_on_partitions_loses_nothing(
    db_url: str, broker: Mosquitto, tmp_path: Path
) -> None:
    """Two workers split the devices on plain persistent subscriptions, which
    Mosquitto restores after a restart (shared ones it drops: see the
    README). Central is down for an upgrade when the broker restarts, and
    two more nodes come up and publish into the workers' sessions; then the
    broker restarts again with the workers up and all four nodes sending."""
    total = 4000
    first, then = ("sim-a", "sim-d"), ("sim-b", "sim-e")
    for pair in (first, then):  # each pair has a device in both partitions
        assert {zlib.crc32(d.encode()) % 2 for d in pair} == {0, 1}
    engine = make_engine(db_url)
    migrate(engine)
    register(engine, *first, *then)

    def workers_up() -> list[subprocess.Popen[bytes]]:
        return [
            start_worker(
                db_url, broker.port, w, tmp_path, presence=w == "pa", partition=p
            )
            for w, p in (("pa", "1/2"), ("pb", "2/2"))
        ]

    def nodes_up(devices: tuple[str, ...]) -> list[subprocess.Popen[bytes]]:
        return [
            start_node(node_config(tmp_path, d, broker.port), total) for d in devices
        ]

    workers = workers_up()
    nodes = nodes_up(first)
    try:
        wait_until(lambda: stored(engine) >= 2000, 90, "2,000 events")
        stop(workers)
        broker.restart()
        nodes += nodes_up(then)
        time.sleep(5.0)  # they publish; nobody takes it yet
        workers = workers_up()
        wait_until(lambda: stored(engine) >= 10_000, 90, "10,000 events")
        broker.restart()
        wait_until(lambda: stored(engine) >= 4 * total, 180, f"{4 * total} events")
        time.sleep(1.0)  # a late duplicate would show up now
    finally:
        stop(nodes)
        stop(workers)
    reconcile(engine, dict.fromkeys((*first, *then), total))
    engine.dispose()


# -- PostgreSQL restarted under load, and its primary lost to a replica ---------------
class PgServer:
    """A PostgreSQL server of the test's own, in ``base``, driven by pg_ctl."""

    def __init__(self, base: Path, options: str = "") -> None:
        tools = [_pg_tool(t) for t in ("initdb", "pg_ctl", "pg_basebackup")]
        if None in tools:
            pytest.skip("PostgreSQL's initdb/pg_ctl/pg_basebackup are not installed")
        self.initdb, self.pg_ctl, self.basebackup = (str(t) for t in tools)
        base.mkdir(mode=0o755)
        self.as_pg: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(base, user="postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.base, self.data, self.port = base, base / "data", free_port()
        self.options = (
            f"-p {self.port} -k {base} -c listen_addresses=127.0.0.1 {options}"
        )

    def run(self, *cmd: str, check: bool = True) -> None:
        subprocess.run([*self.as_pg, *cmd], check=check, capture_output=True)

    def init(self) -> None:
        self.run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def ctl(self, *args: str, check: bool = True) -> None:
        log = str(self.base / "log")
        self.run(self.pg_ctl, "-D", str(self.data), "-l", log, "-w", *args, check=check)

    def start(self) -> None:
        self.ctl("-o", self.options, "start")

    def restart(self) -> None:
        self.ctl("-o", self.options, "-m", "fast", "restart")

    def kill(self) -> None:
        self.ctl("-m", "immediate", "stop", check=False)

    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


def _pg_tool(name: str) -> str | None:
    """On PATH, or where Debian keeps a server's tools (the newest version)."""
    found = shutil.which(name)
    if found is None:
        debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(max(debian, key=lambda p: int(p.parts[-3]))) if debian else None
    return found


@pytest.fixture
def make_pg() -> Iterator[Callable[..., PgServer]]:
    """PostgreSQL servers of the test's own, killed and removed after it."""
    base = Path(tempfile.mkdtemp(prefix="pg-"))
    base.chmod(0o755)
    made: list[PgServer] = []

    def make(name: str, options: str = "") -> PgServer:
        made.append(PgServer(base / name, options))
        return made[-1]

    try:
        yield make
    finally:
        for server in made:
            server.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def own_postgres(
    make_pg: Callable[..., PgServer],
) -> tuple[str, Callable[[], None]]:
    """A PostgreSQL of the test's own and a way to restart it."""
    server = make_pg("pg")
    server.init()
    server.start()
    return server.url(), server.restart


def test_postgres_restarted_under_load_loses_nothing(
    own_postgres: tuple[str, Callable[[], None]],
    make_central: Any,
    broker: Mosquitto,
    tmp_path: Path,
) -> None:
    url, restart = own_postgres
    total = 6000
    central: Central = make_central(url)
    engine = central.services.engine
    register(engine, "sim-pg")
    node = start_node(node_config(tmp_path, "sim-pg", broker.port), total)
    try:
        wait_until(lambda: stored(engine) >= 1500, 90, "1,500 events")
        restart()  # the ingest's commits fail, nothing is acknowledged, it retries
        wait_until(lambda: stored(engine) >= 3500, 90, "3,500 events after restart")
        restart()
        wait_until(lambda: stored(engine) >= total, 120, f"{total} events")
        time.sleep(1.0)
    finally:
        stop([node])
    assert central.services.metrics.db_errors._value.get() >= 1
    reconcile(engine, {"sim-pg": total})


def test_the_primary_lost_its_replica_takes_over_and_nothing_is_lost(
    make_pg: Callable[..., PgServer],
    make_central: Any,
    broker: Mosquitto,
    tmp_path: Path,
) -> None:
    """The scale-out deployment's database, as deploy/cluster/ configures it.

    A primary with a synchronous streaming replica (the replica's settings
    from ``postgresql-replica.conf``); central on the two-host URL of
    ``central.env``. The primary dies mid-load (immediate stop), the replica
    is promoted, and central carries on with it: nothing lost, nothing twice.
    """
    primary = make_pg("pg-1", "-c synchronous_standby_names=pg2")
    primary.init()
    primary.start()
    replica = make_pg("pg-2")
    replica.run(
        replica.basebackup,
        *("-D", str(replica.data), "-h", "127.0.0.1", "-p", str(primary.port)),
        *("-U", "postgres", "-X", "stream", "-R"),
    )
    conf = (DEPLOY / "cluster" / "postgresql-replica.conf").read_text(encoding="utf-8")
    conf = conf.replace(
        "host=pg-1.baling.local port=5432 user=replicator",
        f"host=127.0.0.1 port={primary.port} user=postgres",
    )
    with (replica.data / "postgresql.auto.conf").open("a", encoding="utf-8") as f:
        f.write(conf)
    replica.start()
    admin = sa.create_engine(primary.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        wait_until(
            lambda: (
                conn.execute(
                    sa.text(
                        "SELECT sync_state FROM pg_stat_replication"
                        " WHERE application_name = 'pg2'"
                    )
                ).scalar()
                == "sync"
            ),
            30,
            "the replica streaming synchronously",
        )
        conn.execute(sa.text("CREATE ROLE baling LOGIN"))
        conn.execute(sa.text("CREATE DATABASE baling OWNER baling"))
    admin.dispose()
    env = env_file(DEPLOY / "cluster" / "central.env")
    url = (
        env["CENTRAL_DATABASE_URL"]
        .replace("pg-1.baling.local:5432", f"127.0.0.1:{primary.port}")
        .replace("pg-2.baling.local:5432", f"127.0.0.1:{replica.port}")
    )
    central: Central = make_central(url, ingest_batch=200)
    engine = central.services.engine
    register(engine, "sim-ha")
    total = 6000
    node = start_node(node_config(tmp_path, "sim-ha", broker.port), total)
    try:
        wait_until(lambda: stored(engine) >= 2000, 90, "2,000 events")
        before = stored(engine)
        primary.kill()  # its disk gone: only what the replica holds survives
        replica.ctl("promote")
        wait_until(lambda: stored(engine) >= total, 120, f"{total} events")
        time.sleep(1.0)
    finally:
        stop([node])
    assert before < total  # the primary died with events still coming
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar() is False
    assert central.services.metrics.db_errors._value.get() >= 1
    reconcile(engine, {"sim-ha": total})


# -- nodes cut off from the network ---------------------------------------------------
class Network:
    """The link between a group of nodes and the broker, which the test cuts.

    A TCP relay: while cut, every connection is closed and new ones are
    refused (as a dead uplink looks to a node); restored, it relays again.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown wakes the accept() blocked on it; close alone would
            # leave it to let one more connection through
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    down.close()
                    return
                up = socket.create_connection(("127.0.0.1", self.upstream))
                self._conns += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def online(engine: sa.Engine, devices: tuple[str, ...]) -> set[bool]:
    """Whether central holds ``devices`` online (one value if all agree)."""
    with engine.connect() as conn:
        rows: list[Any] = list(
            conn.execute(
                sa.select(sa.column("online"))
                .select_from(sa.table("device"))
                .where(sa.column("id").in_(devices))
            ).all()
        )
    return {bool(r[0]) for r in rows}


@pytest.mark.parametrize("cut_s", [20, pytest.param(180, marks=pytest.mark.long)])
def test_nodes_cut_off_return_with_their_backlog(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path, cut_s: int
) -> None:
    total, devices = 4000, ("sim-n1", "sim-n2", "sim-n3")
    central: Central = make_central(sqlite_url)
    engine = central.services.engine
    register(engine, *devices)
    net = Network(broker.port)
    nodes = [start_node(node_config(tmp_path, d, net.port), total) for d in devices]
    try:
        wait_until(lambda: stored(engine) >= 1500, 90, "1,500 events")
        net.cut()
        time.sleep(5)  # what the broker took before the cut reaches central
        cut_at = stored(engine)
        # their last will: central shows them offline while they are away
        wait_until(lambda: online(engine, devices) == {False}, 30, "offline")
        time.sleep(cut_s)  # the nodes keep producing into their outboxes
        assert stored(engine) == cut_at, "events got through a cut network"
        assert cut_at < total * len(devices)
        net.restore()
        wait_until(lambda: stored(engine) >= total * len(devices), 180, "the backlog")
        wait_until(lambda: online(engine, devices) == {True}, 30, "back online")
        time.sleep(1.0)
    finally:
        stop(nodes)
        net.cut()
    reconcile(engine, dict.fromkeys(devices, total))


# -- a node's outbox disk full --------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB filesystem (tmpfs) for a node's data directory."""
    where = tmp_path / "node-disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr!r}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_node_whose_disk_fills_raises_a_fault_and_loses_nothing(
    make_central: Any, sqlite_url: str, broker: Mosquitto, small_disk: Path
) -> None:
    """What the node took before its disk filled reaches central, once each;
    the node raises ``outbox_full`` and keeps running (its producer waits)."""
    central: Central = make_central(sqlite_url)
    engine = central.services.engine
    register(engine, "sim-disk")
    broker.stop()  # the uplink is down: everything stays on the node's disk
    agent = build_agent(
        SimAgent,
        NodeSettings(
            device_id="sim-disk",
            kind="sim",
            data_dir=small_disk,
            broker_port=broker.port,
            log_level="WARNING",
        ),
        total=10_000,
        pad=900,  # ~1.1 kB each: the disk holds under 2,000
    )
    halt = threading.Event()
    runner = threading.Thread(target=agent.run, args=(halt,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: "outbox_full" in agent.health().faults, 60, "a full disk")
        time.sleep(1.0)
        assert runner.is_alive()  # the node carries on
        taken = agent.seq  # what its outbox accepted: nothing past it was made
        assert 0 < taken < 10_000
        broker.start()
        wait_until(lambda: stored(engine) >= taken, 120, f"{taken} events")
        time.sleep(2.0)  # resends of entries it could not forget are ignored
        assert runner.is_alive()
    finally:
        halt.set()
        runner.join(timeout=15)
    reconcile(engine, {"sim-disk": taken})


# -- a node's clock far off -----------------------------------------------------------
class OffsetClock:
    """The host's clocks, the wall clock moved by ``offset`` (a bad RTC)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def test_nodes_with_wrong_clocks_lose_nothing(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path
) -> None:
    total = 1000
    central: Central = make_central(sqlite_url)
    engine = central.services.engine
    offsets = {"sim-ahead": timedelta(hours=3), "sim-behind": -timedelta(days=400)}
    register(engine, *offsets)
    halt = threading.Event()
    runners = []
    for device, offset in offsets.items():
        agent = build_agent(
            SimAgent,
            NodeSettings(
                device_id=device,
                kind="sim",
                data_dir=tmp_path / device,
                broker_port=broker.port,
            ),
            clock=OffsetClock(offset),
            total=total,
        )
        runner = threading.Thread(target=agent.run, args=(halt,), daemon=True)
        runner.start()
        runners.append(runner)
    try:
        wait_until(lambda: stored(engine) >= 2 * total, 60, "both nodes' events")
    finally:
        halt.set()
        for r in runners:
            r.join(timeout=15)
    reconcile(engine, dict.fromkeys(offsets, total))
    with engine.connect() as conn:  # kept at their receipt time, not the node's
        latest = conn.execute(sa.text("SELECT MAX(ts) FROM event")).scalar_one()
    if isinstance(latest, str):  # SQLite hands back text
        latest = datetime.fromisoformat(latest)
    latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
    assert latest <= datetime.now(UTC) + timedelta(minutes=1)
