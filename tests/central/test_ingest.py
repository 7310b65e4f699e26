"""Central's ingest, registry and device twin against a real broker and database."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.api import register
from support.waiting import wait_until

from central.fleet import registry
from central.models import Device, Event
from central.operators.auth import create_operator
from central.police.models import Officer
from edge import Agent, CommandError, NodeSettings, PahoBus, SystemClock, build_agent
from edge.bus import Received
from edge.protocol import encode, make, topics
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central
    from edge.protocol.messages import NodeConfig
from edge.protocol.signing import public_key_text

pytestmark = pytest.mark.mqtt
CLOCK = SystemClock()
PASSWORD = "correct horse battery"


def stored(central: Central, device: str | None = None) -> list[Event]:
    with Session(central.services.engine) as s:
        stmt = select(Event).order_by(Event.seq)  # type: ignore[arg-type]
        if device:
            stmt = stmt.where(Event.device == device)
        return list(s.exec(stmt).all())


def device(central: Central, device_id: str) -> Device:
    with Session(central.services.engine) as s:
        return registry.get(s, device_id)


def metric(central: Central, name: str, **labels: str) -> float:
    value = central.services.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


@pytest.fixture
def publisher(broker: Mosquitto) -> Iterator[PahoBus]:
    bus = PahoBus(
        client_id="test-pub",
        host="127.0.0.1",
        port=broker.port,
        clean_start=True,
        session_expiry=0,
    )
    bus.start()
    assert bus.wait_connected(5)
    yield bus
    bus.stop()


def test_events_are_stored_once_and_duplicates_ignored(
    make_central: Any, db_url: str, publisher: PahoBus
) -> None:
    central: Central = make_central(db_url)
    register(central.services.engine, "cam-1", now=CLOCK.now())
    envs = [make("cam-1", "plate", {"n": n}, now=CLOCK.now()) for n in range(5)]
    for env in [*envs, envs[0], envs[3]]:
        publisher.publish(topics.event("cam-1", "plate"), encode(env))
    wait_until(
        lambda: (
            len(stored(central)) == 5
            and metric(central, "baling_ingest_duplicates_total") == 2
        )
    )
    assert [e.body["n"] for e in stored(central)] == [0, 1, 2, 3, 4]
    assert device(central, "cam-1").last_seen is not None  # online: its state's word


def test_bad_input_is_counted_and_never_blocks_good(
    make_central: Any, db_url: str, publisher: PahoBus
) -> None:
    central: Central = make_central(db_url, max_payload_bytes=1024)
    register(central.services.engine, "cam-1", now=CLOCK.now())
    now = CLOCK.now()
    from datetime import timedelta  # noqa: PLC0415

    bad = [
        (topics.event("cam-1", "plate"), b"{junk"),
        (topics.event("cam-1", "plate"), b"{" + b" " * 4000 + b"}"),
        (topics.event("cam-1", "sos"), encode(make("cam-1", "plate", {}, now=now))),
        (topics.event("cam-2", "plate"), encode(make("cam-1", "plate", {}, now=now))),
        (topics.event("ghost", "plate"), encode(make("ghost", "plate", {}, now=now))),
    ]
    for topic, raw in bad:
        publisher.publish(topic, raw)
    publisher.publish(
        topics.event("cam-1", "plate"),
        encode(make("cam-1", "plate", {"good": True}, now=now)),
    )
    skewed = make("cam-1", "plate", {"skewed": True}, now=now + timedelta(days=1))
    publisher.publish(topics.event("cam-1", "plate"), encode(skewed))
    wait_until(lambda: len(stored(central)) == 2)  # a wrong clock loses nothing
    bodies = [e.body for e in stored(central)]
    assert {"good": True} in bodies
    assert {"skewed": True} in bodies
    assert metric(central, "baling_ingest_clock_skew_total", direction="ts_future") == 1
    wait_until(
        lambda: (
            sum(
                metric(central, "baling_ingest_rejected_total", reason=r)
                for r in (
                    "json",
                    "oversize",
                    "topic_mismatch",
                    "unknown_device",
                )
            )
            == 5
        )
    )
    assert metric(central, "baling_ingest_rejected_total", reason="topic_mismatch") == 2
    text = central.services.metrics.render().decode()
    assert 'baling_ingest_rejected_total{reason="oversize"} 1.0' in text
    assert all(w._thread is not None and w._thread.is_alive() for w in central.workers)


def test_commit_failure_is_retried_not_acknowledged(
    make_central: Any, db_url: str, publisher: PahoBus
) -> None:
    central: Central = make_central(db_url)
    register(central.services.engine, "cam-1", now=CLOCK.now())
    engine = central.services.engine
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE event RENAME TO event_away"))
    publisher.publish(
        topics.event("cam-1", "plate"),
        encode(make("cam-1", "plate", {"kept": 1}, now=CLOCK.now())),
    )
    wait_until(lambda: metric(central, "baling_ingest_db_errors_total") >= 1)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE event_away RENAME TO event"))
    wait_until(lambda: len(stored(central)) == 1)
    assert stored(central)[0].body == {"kept": 1}


class RefusingAgent(Agent):
    kind: ClassVar[str] = "sim"

    def apply_config(self, config: NodeConfig) -> None:
        if config.heartbeat_s < 10:
            raise CommandError(
                f"expected heartbeat_s >= 10 on this radio, got {config.heartbeat_s}"
            )


def run(agent: Agent) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_presence_twin_drift_and_commands(
    make_central: Any, db_url: str, broker: Mosquitto, tmp_path: Path
) -> None:
    central: Central = make_central(db_url)
    register(central.services.engine, "sim-1", "sim-2", now=CLOCK.now())
    with Session(central.services.engine) as s:
        create_operator(
            s, username="tech", password=PASSWORD, role="technician", now=CLOCK.now()
        )
    agents: list[Agent] = [
        build_agent(
            cls,
            NodeSettings(
                device_id=i,
                kind="sim",
                data_dir=tmp_path / i,
                broker_port=broker.port,
                heartbeat_s=1,
                command_keys=[public_key_text(central.command_key.public_key())],
                require_signed_commands=True,
            ),
        )
        for cls, i in [(SimAgent, "sim-1"), (RefusingAgent, "sim-2")]
    ]
    runs = [run(a) for a in agents]
    client = TestClient(central.app)
    token = client.post(
        "/api/v1/auth/token", data={"username": "tech", "password": PASSWORD}
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    try:
        wait_until(
            lambda: device(central, "sim-1").online and device(central, "sim-2").online
        )
        assert device(central, "sim-1").version == "0.1.0"
        r = client.put("/api/v1/policy/fleet/*", headers=auth, json={"heartbeat_s": 5})
        assert r.json()["published"] == 2
        wait_until(lambda: device(central, "sim-2").config_status == "refused")
        wait_until(
            lambda: (
                device(central, "sim-1").reported_version
                == device(central, "sim-1").desired_version
            )
        )
        listed = {
            d["id"]: d
            for d in client.get("/api/v1/devices", headers=auth).json()["items"]
        }
        assert listed["sim-1"]["drift"] is False
        assert listed["sim-2"]["drift"] is True
        assert "heartbeat_s >= 10" in listed["sim-2"]["config_reason"]
        drifted = client.get("/api/v1/devices?drift=true", headers=auth).json()
        assert [d["id"] for d in drifted["items"]] == ["sim-2"]
        assert agents[0].config.heartbeat_s == 5

        pong = client.post("/api/v1/devices/sim-1/commands/ping", headers=auth, json={})
        assert pong.json() == {
            "command": "ping",
            "ok": True,
            "error": "",
            "result": {"pong": True},
        }
        # Only everyday commands go through the generic route (red team 7).
        nope = client.post(
            "/api/v1/devices/sim-1/commands/format-disk", headers=auth, json={}
        )
        assert nope.status_code == 403
        assert "format-disk" in nope.json()["detail"]
    finally:
        for stop, thread in runs:
            stop.set()
            thread.join(10)
    # A clean stop publishes offline; central shows it.
    wait_until(lambda: not device(central, "sim-1").online)
    timeout = client.post(
        "/api/v1/devices/sim-1/commands/ping", headers=auth, json={"timeout_s": 0.5}
    )
    assert timeout.status_code == 504


def test_last_will_marks_offline_and_sweep_catches_silence(
    make_central: Any, db_url: str, publisher: PahoBus
) -> None:
    central: Central = make_central(db_url, offline_after_s=5)
    register(central.services.engine, "cam-1", "cam-2", now=CLOCK.now())
    now = CLOCK.now()
    publisher.publish(
        topics.state("cam-1"),
        encode(make("cam-1", "state", {"online": True, "kind": "sim"}, now=now)),
    )
    publisher.publish(
        topics.state("cam-2"),
        encode(make("cam-2", "state", {"online": True, "kind": "sim"}, now=now)),
    )
    wait_until(
        lambda: device(central, "cam-1").online and device(central, "cam-2").online
    )
    publisher.publish(
        topics.state("cam-1"),
        encode(make("cam-1", "state", {"online": False, "kind": "sim"}, now=now)),
    )
    wait_until(lambda: not device(central, "cam-1").online)
    # a backlog arriving after its last will: seen, but still away
    seen = device(central, "cam-1").last_seen
    time.sleep(5.1)  # past the last_seen write interval
    publisher.publish(
        topics.event("cam-1", "plate"), encode(make("cam-1", "plate", {}, now=now))
    )
    wait_until(lambda: device(central, "cam-1").last_seen != seen)
    assert not device(central, "cam-1").online
    wait_until(lambda: not device(central, "cam-2").online, timeout=20)  # silent


def test_two_workers_share_the_ingest(
    make_central: Any, sqlite_url: str, publisher: PahoBus
) -> None:
    central: Central = make_central(sqlite_url, workers=2)
    register(central.services.engine, "cam-1", now=CLOCK.now())
    for n in range(600):
        publisher.publish(
            topics.event("cam-1", "plate"),
            encode(make("cam-1", "plate", {"n": n}, now=CLOCK.now())),
        )
    wait_until(lambda: len(stored(central)) == 600)
    assert sorted(e.body["n"] for e in stored(central)) == list(range(600))
    taken = [w.taken for w in central.workers]
    assert all(t > 0 for t in taken), (
        f"expected both workers to take a share, got {taken}"
    )


def test_a_process_without_presence_stores_events_and_leaves_states_alone(
    make_central: Any, sqlite_url: str, publisher: PahoBus
) -> None:
    """Several processes share the ingest; one keeps presence and the timers."""
    central: Central = make_central(
        sqlite_url, ingest_shared=True, ingest_presence=False, worker_id="w2"
    )
    register(central.services.engine, "cam-1", now=CLOCK.now())
    now = CLOCK.now()
    publisher.publish(
        topics.state("cam-1"),
        encode(
            make(
                "cam-1",
                "state",
                {"online": True, "kind": "sim", "version": "9.9"},
                now=now,
            )
        ),
    )
    publisher.publish(
        topics.event("cam-1", "plate"), encode(make("cam-1", "plate", {}, now=now))
    )
    wait_until(lambda: len(stored(central)) == 1)
    assert device(central, "cam-1").version != "9.9"  # the state is another's
    assert central.timers is None  # the timers are the presence process's too


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_workers_sharing_the_ingest_never_deadlock(
    make_central: Any, db_url: str
) -> None:
    """Two workers commit the same officers' fixes at once, heard in opposite
    orders: each locks rows device by device, so neither waits on the other in
    a cycle (a deadlock would fail a batch, to be retried, at every round)."""
    central: Central = make_central(db_url, workers=2)
    handhelds = [f"hh-{n:03d}" for n in range(300)]
    register(central.services.engine, *handhelds, kind="handheld", now=CLOCK.now())
    first, second = central.workers

    def batch(order: list[str], round_: int) -> list[Received]:
        now = CLOCK.now()
        fix = {"lat": 29.1, "lon": 113.1, "fix_ts": now.isoformat()}
        return [
            Received(
                topic=topics.event(h, "position"),
                payload=encode(
                    make(h, "position", {**fix, "speed_mps": round_}, now=now)
                ),
                qos=1,
                retain=False,
                mid=0,
            )
            for h in order
        ]

    failed: list[BaseException] = []
    together = threading.Barrier(2)

    def take(worker: Any, msgs: list[Received]) -> None:
        together.wait()
        try:
            worker.process(msgs)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            failed.append(exc)

    for round_ in range(5):
        threads = [
            threading.Thread(target=take, args=(first, batch(handhelds, round_))),
            threading.Thread(
                target=take, args=(second, batch(handhelds[::-1], round_))
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failed, failed[:3]
    assert len(stored(central)) == 5 * 2 * len(handhelds)
    with Session(central.services.engine) as s:
        speeds = s.exec(select(Officer.speed_mps)).all()
    assert sorted(speeds) == [4.0] * len(handhelds)  # every fix applied


def test_a_partition_is_the_kth_of_n(tmp_path: Path) -> None:
    from pydantic import ValidationError  # noqa: PLC0415

    from central.settings import CentralSettings  # noqa: PLC0415

    def settings(partition: str | None) -> CentralSettings:
        return CentralSettings(
            jwt_secret="p" * 40,
            data_dir=tmp_path,
            database_url="sqlite://",
            ingest_partition=partition,
        )

    assert settings("2/3").partition() == (1, 3)
    assert settings(None).partition() is None
    for bad, said in (("3/2", "k ≤ n"), ("0/2", "pattern"), ("1", "pattern")):
        with pytest.raises(ValidationError, match=said):
            settings(bad)
