"""The edge runtime against a real Mosquitto: state, LWT, commands, config, outbox."""

from __future__ import annotations

import json
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from edge import Backoff, NodeSettings, PahoBus, Received, SystemClock, build_agent
from edge.protocol import decode, encode, make, topics
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from baling.broker import Mosquitto

pytestmark = pytest.mark.mqtt


class Observer:
    """A plain client that records what it sees, like central would."""

    def __init__(self, port: int, filters: list[str]) -> None:
        self.bus = PahoBus(
            client_id=f"obs-{random.randrange(10**9)}",
            host="127.0.0.1",
            port=port,
            subscriptions=[(f, 1) for f in filters],
            clean_start=True,
            session_expiry=0,
        )
        self.bus.start()
        assert self.bus.wait_connected(5)

    def expect(self, pred: object, timeout: float = 10.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.bus.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, Received) and pred(item):  # type: ignore[operator]
                return item
        raise AssertionError("expected message did not arrive")

    def close(self) -> None:
        self.bus.stop()


def state_of(msg: Received) -> dict[str, Any]:
    return decode(msg.payload).body


@pytest.fixture
def observer(broker: Mosquitto) -> Iterator[Observer]:
    obs = Observer(broker.port, ["bl/v1/#"])
    yield obs
    obs.close()


def settings(broker: Mosquitto, tmp_path: Path, device: str = "sim-1") -> NodeSettings:
    return NodeSettings(
        device_id=device,
        kind="sim",
        data_dir=tmp_path / device,
        broker_port=broker.port,
        heartbeat_s=1.0,
        inflight=20,
    )


@pytest.fixture
def running(broker: Mosquitto, tmp_path: Path) -> Iterator[SimAgent]:
    agent = build_agent(SimAgent, settings(broker, tmp_path))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    assert isinstance(agent.bus, PahoBus)
    assert agent.bus.wait_subscribed(10)  # commands sent before this would be lost
    yield agent
    stop.set()
    thread.join(10)


def test_online_state_is_retained_with_version_and_health(
    running: SimAgent, observer: Observer
) -> None:
    msg = observer.expect(lambda m: m.topic == topics.state("sim-1"))
    body = state_of(msg)
    assert body["online"] is True
    assert body["version"] == "0.1.0"
    assert body["health"]["status"] == "ok"


def test_commands_answer_with_correlation_and_refusals(
    running: SimAgent, observer: Observer
) -> None:
    observer.expect(lambda m: m.topic == topics.state("sim-1"))
    clock = SystemClock()
    bus = observer.bus
    bus.publish(
        topics.command("sim-1", "ping"),
        b"{junk",
        qos=1,
        response_topic=topics.reply("sim-1"),
        correlation=b"bad",
    )
    for name, corr in [("ping", b"c1"), ("reboot", b"c2")]:
        env = make("sim-1", name, {}, now=clock.now())
        bus.publish(
            topics.command("sim-1", name),
            encode(env),
            qos=1,
            response_topic=topics.reply("sim-1"),
            correlation=corr,
        )
    ok = observer.expect(
        lambda m: m.topic.endswith("/reply") and m.correlation == b"c1"
    )
    assert decode(ok.payload).body == {
        "command": "ping",
        "ok": True,
        "error": "",
        "result": {"pong": True},
    }
    refused = observer.expect(
        lambda m: m.topic.endswith("/reply") and m.correlation == b"c2"
    )
    body = decode(refused.payload).body
    assert body["ok"] is False
    assert "got 'reboot'" in body["error"]
    assert running.rejected == 1


def test_config_applied_and_refused_are_reported(
    running: SimAgent, observer: Observer
) -> None:
    clock = SystemClock()
    good = make(
        "sim-1",
        "config",
        {"version": "v1", "values": {"event_interval_s": 0}},
        now=clock.now(),
    )
    observer.bus.publish(topics.config("sim-1"), encode(good), retain=True)
    applied = observer.expect(
        lambda m: (
            m.topic == topics.state("sim-1")
            and state_of(m)["config"]["status"] == "applied"
        )
    )
    assert state_of(applied)["config"]["version"] == "v1"
    bad = make(
        "sim-1",
        "config",
        {"version": "v2", "values": {"heartbeat_s": -1}},
        now=clock.now(),
    )
    observer.bus.publish(topics.config("sim-1"), encode(bad), retain=True)
    refused = observer.expect(
        lambda m: (
            m.topic == topics.state("sim-1")
            and state_of(m)["config"]["status"] == "refused"
        )
    )
    report = state_of(refused)["config"]
    assert report["version"] == "v2"
    assert "heartbeat_s" in report["reason"]
    assert running.config.event_interval_s == 0  # type: ignore[attr-defined]


def test_events_arrive_in_order_across_a_broker_restart(
    broker: Mosquitto, tmp_path: Path, observer: Observer
) -> None:
    agent = build_agent(SimAgent, settings(broker, tmp_path), total=600, batch=100)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        observer.expect(lambda m: "/event/" in m.topic)
        broker.restart()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (agent.outbox.depth or agent.seq < 600):
            time.sleep(0.1)
        assert agent.outbox.depth == 0
    finally:
        stop.set()
        thread.join(10)
    # The observer's clean session lost what flew during the restart; the
    # node's outbox did not: it sent everything, in order.
    assert agent.seq == 600


def _node(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'device_id = "sim-9"\nkind = "sim"\ndata_dir = "{tmp_path / "n"}"\n'
        f"broker_port = {port}\nheartbeat_s = 1\n",
        encoding="utf-8",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "sim",
            "eventnode",
            "--config",
            str(conf),
            *extra,
        ]
    )


def test_last_will_marks_a_killed_node_offline(
    broker: Mosquitto, tmp_path: Path, observer: Observer
) -> None:
    proc = _node(tmp_path, broker.port)
    observer.expect(
        lambda m: m.topic == topics.state("sim-9") and state_of(m)["online"]
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    offline = observer.expect(
        lambda m: m.topic == topics.state("sim-9") and not state_of(m)["online"]
    )
    assert offline.retain is False or offline.retain is True  # delivered live
    assert state_of(offline)["kind"] == "sim"


def test_sigterm_stops_gracefully(
    broker: Mosquitto, tmp_path: Path, observer: Observer
) -> None:
    proc = _node(tmp_path, broker.port, "--total", "50")
    observer.expect(
        lambda m: m.topic == topics.state("sim-9") and state_of(m)["online"]
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    observer.expect(
        lambda m: m.topic == topics.state("sim-9") and not state_of(m)["online"]
    )


def test_node_refuses_a_bad_settings_file(tmp_path: Path) -> None:
    conf = tmp_path / "node.toml"
    conf.write_text('device_id = "Bad Id"\ndata_dir = "/tmp/x"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "baling.cli", "node", "sim", "--config", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "device_id" in proc.stderr
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "node",
            "tram_stop",
            "--config",
            str(conf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2
    assert "unknown node kind 'tram_stop'" in unknown.stderr


def test_backoff_is_jittered_and_capped() -> None:
    b = Backoff(initial=1.0, cap=8.0, rng=random.Random(1))
    delays = [b.next() for _ in range(10)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) == len(delays)
    b.reset()
    assert b.next() <= 1.0
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0, cap=1)


def test_reply_json_shape(running: SimAgent, observer: Observer) -> None:
    clock = SystemClock()
    env = make("sim-1", "health", {}, now=clock.now())
    observer.bus.publish(
        topics.command("sim-1", "health"),
        encode(env),
        response_topic=topics.reply("sim-1"),
        correlation=b"h",
    )
    msg = observer.expect(
        lambda m: m.topic.endswith("/reply") and m.correlation == b"h"
    )
    result = json.loads(msg.payload)["body"]["result"]
    assert result["status"] == "ok"
    assert "outbox_depth" in result
