"""One contract over both brokers: the embedded one must serve Baling like Mosquitto."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session

from baling.broker import Mosquitto
from baling.minibroker import MiniBroker, topic_matches
from central import registry
from edge import NodeSettings, PahoBus, Received, SystemClock, build_agent
from edge.protocol import decode, encode, make, topics
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from central.main import Central

pytestmark = pytest.mark.mqtt
CLOCK = SystemClock()


@pytest.fixture(params=["mosquitto", "embedded"])
def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "mosquitto":
        b: Any = Mosquitto(data_dir=tmp_path / "broker")
    else:
        b = MiniBroker()
    b.start()
    yield b
    b.stop()


def client(port: int, *filters: str) -> PahoBus:
    bus = PahoBus(
        client_id=f"c-{time.monotonic_ns()}",
        host="127.0.0.1",
        port=port,
        subscriptions=[(f, 1) for f in filters],
        clean_start=True,
        session_expiry=0,
    )
    bus.start()
    assert bus.wait_subscribed(5)
    return bus


def expect(
    bus: PahoBus, pred: Callable[[Received], bool], timeout: float = 10
) -> Received:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = bus.inbox.get(timeout=0.1)
        except Exception:  # noqa: BLE001, S112 - queue.Empty; keep waiting
            continue
        if isinstance(item, Received) and pred(item):
            return item
    raise AssertionError("expected message did not arrive")


@pytest.mark.parametrize(
    ("flt", "topic", "hit"),
    [
        ("bl/v1/+/event/#", "bl/v1/a/event/plate", True),
        ("bl/v1/+/event/#", "bl/v1/a/state", False),
        ("bl/#", "bl", True),
        ("+/x", "a/x", True),
        ("#", "$SYS/x", False),
        ("a/+", "a/b/c", False),
    ],
)
def test_topic_matching(flt: str, topic: str, hit: bool) -> None:
    assert topic_matches(flt, topic) is hit


def test_node_journey(any_broker: Any, tmp_path: Path) -> None:
    obs = client(any_broker.port, "bl/v1/#")
    agent = build_agent(
        SimAgent,
        NodeSettings(
            device_id="sim-1",
            kind="sim",
            data_dir=tmp_path / "n",
            broker_port=any_broker.port,
        ),
        total=50,
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        seqs: set[int] = set()

        def event(m: Received) -> bool:
            if "/event/" in m.topic:
                seqs.add(decode(m.payload).body["seq"])
            return len(seqs) == 50

        expect(obs, event)
        env = make("sim-1", "ping", {}, now=CLOCK.now())
        obs.publish(
            topics.command("sim-1", "ping"),
            encode(env),
            response_topic=topics.reply("sim-1"),
            correlation=b"k1",
        )
        reply = expect(obs, lambda m: m.topic.endswith("/reply"))
        assert reply.correlation == b"k1"
        assert decode(reply.payload).body["ok"] is True
    finally:
        stop.set()
        thread.join(10)
        obs.stop()


def test_last_will_and_retained(any_broker: Any) -> None:
    from edge.bus import Will  # noqa: PLC0415

    late_topic = topics.config("k-1")
    setter = client(any_broker.port)
    setter.publish(late_topic, b"desired", retain=True)
    dying = PahoBus(
        client_id="dying",
        host="127.0.0.1",
        port=any_broker.port,
        will=Will(topic="bl/v1/k-1/state", payload=b"gone"),
    )
    dying.start()
    assert dying.wait_connected(5)
    late = client(any_broker.port, late_topic, "bl/v1/k-1/state")
    got = expect(late, lambda m: m.topic == late_topic)
    assert got.payload == b"desired"
    assert got.retain is True
    sock = dying._client.socket()
    assert sock is not None
    sock.close()  # vanish without DISCONNECT
    assert expect(late, lambda m: m.topic.endswith("/state")).payload == b"gone"
    setter.stop()
    late.stop()
    dying._stop.set()


def test_central_ingest_and_shared_split(
    any_broker: Any, sqlite_url: str, tmp_path: Path
) -> None:
    from central.main import Central as CentralImpl  # noqa: PLC0415
    from central.settings import CentralSettings  # noqa: PLC0415

    central: Central = CentralImpl(
        CentralSettings(
            database_url=sqlite_url,
            jwt_secret="x" * 40,
            data_dir=tmp_path / "c",
            broker_port=any_broker.port,
            workers=2,
        )
    )
    with Session(central.services.engine) as s:
        registry.register(s, device_id="cam-1", kind="camera", now=CLOCK.now())
    central.start()
    pub = client(any_broker.port)
    try:
        envs = [make("cam-1", "plate", {"n": n}, now=CLOCK.now()) for n in range(200)]
        for env in [*envs, envs[5]]:
            pub.publish(topics.event("cam-1", "plate"), encode(env))
        deadline = time.monotonic() + 15
        while (
            sum(w.taken for w in central.workers) < 201 and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        with central.services.engine.connect() as conn:
            import sqlalchemy as sa  # noqa: PLC0415

            count = conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()
        assert count == 200
        assert all(w.taken > 0 for w in central.workers)
    finally:
        pub.stop()
        central.stop()


def test_embedded_broker_survives_garbage() -> None:
    broker = MiniBroker()
    broker.start()
    try:
        for junk in [
            b"\x10\xff\xff\xff\xff\x01",
            b"\x30\x02ab",
            b"\x10\x05\x00\x04MQTT",
        ]:
            with socket.create_connection(("127.0.0.1", broker.port), timeout=2) as s:
                s.sendall(junk)
                s.settimeout(2)
                with contextlib.suppress(TimeoutError):
                    s.recv(10)
        ok = client(broker.port, "x/#")
        ok.publish("x/y", b"still here", qos=1)
        assert expect(ok, lambda m: m.topic == "x/y").payload == b"still here"
        ok.stop()
    finally:
        broker.stop()
