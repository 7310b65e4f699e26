"""Ingest benchmark: central's ingest against a bare paho subscriber.

Both drain the same 100,000 events (~200 bytes each, 100 devices) that a
publisher left queued on the same Mosquitto for their persistent session:
(a) a bare paho subscriber that only counts — the limit of one Python MQTT
consumer on this machine — and (b) central's ingest worker (validate,
dedupe, commit to SQLite or PostgreSQL, acknowledge after commit). Rounds
alternate a/b so machine noise hits both; the ratio is the median of the
per-round ratios.

    python -m bench.ingest [--events N] [--rounds R] [--db sqlite|postgres]

Last line: ``ingest_ratio=<b/a>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

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


def bare_subscriber_rate(port: int, events: list[tuple[str, bytes]]) -> float:
    """Events per second a counting paho subscriber drains from its session."""
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
    sub.connect("127.0.0.1", port, clean_start=False, properties=props)
    sub.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"bare subscriber got {count[0]} of {total}")
    elapsed = time.perf_counter() - started
    sub.disconnect()
    sub.loop_stop()
    return total / elapsed


def central_rate(
    port: int,
    events: list[tuple[str, bytes]],
    url: str,
    data_dir: Path,
    batch: int = 500,
) -> float:
    """Events per second central's ingest validates, dedupes and commits."""
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
    worker = central.workers[0]
    started = time.perf_counter()
    worker.start()
    while worker.taken < len(events):
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    worker.stop()
    with central.services.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()
    if stored != len(events):
        raise RuntimeError(f"central stored {stored} of {len(events)}")
    central.services.engine.dispose()
    return len(events) / elapsed


def _fresh_pg() -> str:
    schema = f"bench_{int(time.time() * 1000)}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=500, help="central's ingest batch")
    args = parser.parse_args()
    events = make_events(args.events)
    size = statistics.mean(len(p) for _, p in events)
    print(f"events={len(events)} mean_payload_bytes={size:.0f} db={args.db}")
    bare, ours, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(args.rounds):
            broker = Mosquitto(data_dir=root / f"broker-{r}")
            broker.start()
            try:
                a = bare_subscriber_rate(broker.port, events)
                url = (
                    f"sqlite:///{root / f'central-{r}.sqlite3'}"
                    if args.db == "sqlite"
                    else _fresh_pg()
                )
                b = central_rate(
                    broker.port, events, url, root / f"central-{r}", batch=args.batch
                )
            finally:
                broker.stop()
            bare.append(a)
            ours.append(b)
            ratios.append(b / a)
            print(
                f"round {r + 1}: bare_paho={a:,.0f}/s central_ingest={b:,.0f}/s "
                f"ratio={b / a:.2f}",
                flush=True,
            )
    print(
        f"bare_paho_median={statistics.median(bare):,.0f}/s "
        f"central_ingest_median={statistics.median(ours):,.0f}/s"
    )
    print(f"ingest_ratio={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
