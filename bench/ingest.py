"""Ingest benchmark: central's ingest against a bare paho subscriber.

Each drains the same 100,000 events (~180 bytes each, 100 devices) that a
publisher left queued on the same Mosquitto for its persistent session:
(a) a bare paho subscriber that only counts — the limit of one Python MQTT
consumer on this machine — and (b) central's ingest worker (validate,
dedupe, commit to SQLite and to PostgreSQL, acknowledge after commit). A
round runs a, b on SQLite, b on PostgreSQL, a again; each ratio divides by
the mean of the round's two bare rates, so machine noise hits both sides.
The figures are the medians of the per-round ratios.

Besides the rates, each drain's CPU time per event is printed (the
process's, plus the PostgreSQL server processes serving central): on a
loaded machine the rates measure the scheduler as much as the code, and the
CPU a side spends per event says what it would do on a quiet one.

    python -m bench.ingest [--events N] [--rounds R] [--db sqlite|postgres|both]

Last line: ``ingest_ratio=<sqlite> ingest_ratio_pg=<postgres>`` (``-`` for a
database not measured).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session

from baling.broker import Mosquitto
from central.fleet import registry
from central.main import Central
from central.settings import CentralSettings
from edge.clock import SystemClock
from edge.protocol import encode, make, topics

DEVICES = 100
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def make_events(n: int) -> list[tuple[str, bytes]]:
    """Pre-encode ``n`` events of about 200 bytes from ``DEVICES`` devices."""
    clock = SystemClock()
    out = []
    for i in range(n):
        device = f"det-{i % DEVICES:03d}"
        body = {"lane": i % 4, "count": i % 37, "occ": 0.12, "speed": 41.5, "n": i}
        out.append(
            (
                topics.event(device, "flow"),
                encode(make(device, "flow", body, now=clock.now())),
            )
        )
    return out


def publish_all(port: int, events: list[tuple[str, bytes]]) -> None:
    """Publish QoS 1 and wait until the broker acknowledged every message.

    At most 10,000 are outstanding at once: paho stalls when its 65,535
    message ids are all queued.
    """
    done = threading.Event()
    window = threading.BoundedSemaphore(10_000)
    acked = [0]

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        window.release()
        if acked[0] == len(events):
            done.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in events:
        window.acquire()
        client.publish(topic, payload, qos=1)
    if not done.wait(300):
        raise RuntimeError(f"publisher: only {acked[0]} of {len(events)} acknowledged")
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True, slots=True)
class Drain:
    """One side's drain of the queued events."""

    rate: float  # events per second
    cpu_us: float  # CPU microseconds per event (process, plus its database server)


def _backend_cpu_s(pids: set[int]) -> float:
    """CPU seconds the PostgreSQL server processes ``pids`` have used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not on this machine
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def bare_subscriber_rate(port: int, events: list[tuple[str, bytes]]) -> Drain:
    """How fast a counting paho subscriber drains its session, and its CPU."""
    count = [0]
    done = threading.Event()
    total = len(events)

    def on_message(*_args: object) -> None:
        count[0] += 1
        if count[0] == total:
            done.set()

    def client() -> paho.Client:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv5
        )
        c.on_message = on_message
        return c

    from paho.mqtt.packettypes import PacketTypes  # noqa: PLC0415
    from paho.mqtt.properties import Properties  # noqa: PLC0415

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    first = client()
    first.connect("127.0.0.1", port, clean_start=True, properties=props)
    first.subscribe(topics.all_events(), qos=1)
    first.loop(1.0)
    first.loop(1.0)
    first.disconnect()
    publish_all(port, events)
    sub = client()
    started = time.perf_counter()
    cpu = time.process_time()
    sub.connect("127.0.0.1", port, clean_start=False, properties=props)
    sub.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"bare subscriber got {count[0]} of {total}")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    sub.disconnect()
    sub.loop_stop()
    return Drain(rate=total / elapsed, cpu_us=cpu * 1e6 / total)


def central_rate(
    port: int,
    events: list[tuple[str, bytes]],
    url: str,
    data_dir: Path,
    batch: int = 500,
) -> Drain:
    """How fast central's ingest validates, dedupes and commits, and its CPU."""
    settings = CentralSettings(
        database_url=url,
        jwt_secret="b" * 40,
        data_dir=data_dir,
        broker_port=port,
        workers=1,
        ingest_batch=batch,
    )
    central = Central(settings)
    with Session(central.services.engine) as s:
        for d in range(DEVICES):
            registry.register(
                s,
                device_id=f"det-{d:03d}",
                kind="loop_detector",
                now=SystemClock().now(),
            )
    central.start()  # creates the persistent session and subscription
    central.stop()
    publish_all(port, events)
    central = Central(settings)
    engine = central.services.engine
    backends: dict[int, float] = {}  # PostgreSQL server process → its CPU then

    def on_connect(dbapi_conn: Any, _record: object) -> None:  # noqa: ANN401
        pid = getattr(getattr(dbapi_conn, "info", None), "backend_pid", None)
        if isinstance(pid, int):
            backends[pid] = _backend_cpu_s({pid})

    sa.event.listen(engine, "connect", on_connect)
    worker = central.workers[0]
    started = time.perf_counter()
    cpu = time.process_time()
    worker.start()
    while worker.taken < len(events):
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    cpu += _backend_cpu_s(set(backends)) - sum(backends.values())
    worker.stop()
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()
    if stored != len(events):
        raise RuntimeError(f"central stored {stored} of {len(events)}")
    engine.dispose()
    return Drain(rate=len(events) / elapsed, cpu_us=cpu * 1e6 / len(events))


def _fresh_pg() -> str:
    schema = f"bench_{int(time.time() * 1000)}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _drop_pg(url: str) -> None:
    schema = url.rsplit("%3D", 1)[1]
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _round(
    r: int, root: Path, events: list[tuple[str, bytes]], dbs: list[str], batch: int
) -> dict[str, tuple[float, Drain]]:
    """One round on a fresh broker: bare, each database, bare again."""
    broker = Mosquitto(data_dir=root / f"broker-{r}")
    broker.start()
    out: dict[str, tuple[float, Drain]] = {}
    try:
        first = bare_subscriber_rate(broker.port, events)
        ours: dict[str, Drain] = {}
        for db in dbs:
            if db == "sqlite":
                url = f"sqlite:///{root / f'central-{r}.sqlite3'}"
                ours[db] = central_rate(
                    broker.port, events, url, root / f"central-{r}", batch=batch
                )
                continue
            url = _fresh_pg()
            try:
                ours[db] = central_rate(
                    broker.port, events, url, root / f"central-pg-{r}", batch=batch
                )
            finally:
                _drop_pg(url)
        second = bare_subscriber_rate(broker.port, events)
    finally:
        broker.stop()
    bare = (first.rate + second.rate) / 2
    bare_cpu = (first.cpu_us + second.cpu_us) / 2
    print(
        f"round {r + 1}: bare_paho={first.rate:,.0f}/s and {second.rate:,.0f}/s "
        f"({bare_cpu:.1f} µs CPU/event)",
        flush=True,
    )
    for db, drain in ours.items():
        print(
            f"round {r + 1}: central_ingest[{db}]={drain.rate:,.0f}/s "
            f"({drain.cpu_us:.1f} µs CPU/event) ratio={drain.rate / bare:.2f} "
            f"cpu_ratio={bare_cpu / drain.cpu_us:.2f}",
            flush=True,
        )
        out[db] = (drain.rate / bare, drain)
    out["bare"] = (1.0, Drain(rate=bare, cpu_us=bare_cpu))
    return out


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--batch", type=int, default=500, help="central's ingest batch")
    args = parser.parse_args()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    events = make_events(args.events)
    size = statistics.mean(len(p) for _, p in events)
    print(f"events={len(events)} mean_payload_bytes={size:.0f} db={','.join(dbs)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rounds = [_round(r, root, events, dbs, args.batch) for r in range(args.rounds)]
    medians: dict[str, str] = {}
    for side in ["bare", *dbs]:
        rate = statistics.median(x[side][1].rate for x in rounds)
        cpu = statistics.median(x[side][1].cpu_us for x in rounds)
        ratio = statistics.median(x[side][0] for x in rounds)
        medians[side] = f"{ratio:.2f}"
        print(
            f"median {side}: {rate:,.0f}/s, {cpu:.1f} µs CPU/event, ratio {ratio:.2f}"
        )
    print(
        f"ingest_ratio={medians.get('sqlite', '-')} "
        f"ingest_ratio_pg={medians.get('postgres', '-')}"
    )


if __name__ == "__main__":
    main()
