"""The device twin: policy layers stored, desired configurations published.

Layers are stored and checked on SQLite and PostgreSQL; reconciling
publishes through central's real link to a real Mosquitto, and a plain
client reads the retained configurations back, as a node would. The merge
rules themselves are :mod:`central.fleet.policy`'s, tested beside it.
"""

from __future__ import annotations

import queue
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from support.topics import unique_device
from support.waiting import wait_until

from central.db import make_engine, migrate
from central.errors import PolicyError
from central.fleet import registry, twin
from central.messaging.link import CentralLink
from edge.bus import PahoBus, Received
from edge.clock import ManualClock
from edge.protocol import decode

if TYPE_CHECKING:
    from collections.abc import Iterator

    from baling.broker import Mosquitto
    from central.models import PolicyLayer

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def put(session: Session, scope: str, target: str, **values: Any) -> PolicyLayer:
    return twin.put_layer(
        session, scope=scope, target=target, values=values, author="李工", now=NOW
    )


def test_each_layer_keeps_its_versions_and_the_newest_is_in_force(
    session: Session,
) -> None:
    assert put(session, "fleet", "*", heartbeat_s=20).version == 1
    assert put(session, "fleet", "*", heartbeat_s=25).version == 2
    assert put(session, "kind", "camera", fps=4).version == 1
    assert put(session, "site", "rjw", telemetry_s=30).version == 1
    layers = {(la.scope, la.target): la for la in twin.current_layers(session)}
    assert set(layers) == {("fleet", "*"), ("kind", "camera"), ("site", "rjw")}
    assert (layers["fleet", "*"].version, dict(layers["fleet", "*"].values)) == (
        2,
        {"heartbeat_s": 25},
    )


def test_a_layer_no_kind_understands_is_refused_and_not_stored(
    session: Session,
) -> None:
    with pytest.raises(PolicyError, match=r"fleet/\*: expected keys of .*'colour'"):
        put(session, "fleet", "*", colour="red")
    with pytest.raises(PolicyError, match="kind/camera"):
        put(session, "kind", "camera", fps=500)
    with pytest.raises(PolicyError, match="expected target '\\*'"):
        put(session, "fleet", "rjw", heartbeat_s=20)
    assert twin.current_layers(session) == []


def test_a_layer_that_would_break_a_registered_device_names_it(
    session: Session,
) -> None:
    registry.register(session, device_id="cam-1", kind="camera", site="rjw", now=NOW)
    put(session, "fleet", "*", heartbeat_s=20)
    # heartbeat_s must be at least 1 s: fine as a key, fatal for cam-1
    with pytest.raises(PolicyError, match=r"device cam-1: .*heartbeat_s"):
        put(session, "site", "rjw", heartbeat_s=0.5)
    assert [la.scope for la in twin.current_layers(session)] == ["fleet"]
    # the same value where no device is, is stored
    assert put(session, "site", "empty", heartbeat_s=0.5).version == 1


def test_a_devices_facts_are_what_policy_matches_on(session: Session) -> None:
    device = registry.register(
        session,
        device_id="sig-1",
        kind="signal_controller",
        site="rjw",
        groups=["corridor-b", "corridor-a"],
        now=NOW,
    )
    facts = twin.facts(device)
    assert (facts.id, facts.kind, facts.site) == ("sig-1", "signal_controller", "rjw")
    assert facts.groups == ("corridor-a", "corridor-b")


# -- reconcile, on the wire ----------------------------------------------------------
class Retained:
    """A plain client reading configurations, as a node would."""

    def __init__(self, port: int) -> None:
        self.bus = PahoBus(
            client_id=unique_device("obs"),
            host="127.0.0.1",
            port=port,
            subscriptions=[("bl/v1/+/config", 1)],
            clean_start=True,
            session_expiry=0,
        )
        self.seen: dict[str, dict[str, Any]] = {}
        self.bus.start()
        assert self.bus.wait_subscribed(10)

    def drain(self) -> dict[str, dict[str, Any]]:
        while True:
            try:
                item = self.bus.inbox.get_nowait()
            except queue.Empty:
                return self.seen
            if isinstance(item, Received):
                env = decode(item.payload)
                self.seen[env.device] = env.body

    def close(self) -> None:
        self.bus.stop()


@pytest.fixture
def link(broker: Mosquitto) -> Iterator[CentralLink]:
    made = CentralLink(
        bus=PahoBus(
            client_id=unique_device("central"), host="127.0.0.1", port=broker.port
        ),
        clock=ManualClock(NOW),
    )
    made.start()
    assert made.bus.wait_connected(10)
    yield made
    made.stop()


def test_reconcile_publishes_changed_configurations_retained(
    sqlite_url: str, broker: Mosquitto, link: CentralLink
) -> None:
    engine = make_engine(sqlite_url)
    migrate(engine)
    with Session(engine) as session:
        registry.register(
            session, device_id="cam-1", kind="camera", site="rjw", now=NOW
        )
        registry.register(
            session, device_id="sim-1", kind="sim", groups=["night"], now=NOW
        )
        put(session, "fleet", "*", heartbeat_s=20, fps=3)  # fps: cameras only
        put(session, "group", "night", telemetry_s=300)
        assert twin.reconcile(session, link) == 2
        assert twin.reconcile(session, link) == 0  # nothing changed
        desired = {
            d: registry.get(session, d).desired_version for d in ("cam-1", "sim-1")
        }

    reader = Retained(broker.port)  # subscribes after the fact: retained
    try:
        seen = wait_until(lambda: len(reader.drain()) == 2 and reader.seen)
        assert seen["cam-1"]["values"]["heartbeat_s"] == 20
        assert seen["cam-1"]["values"]["fps"] == 3
        assert "fps" not in seen["sim-1"]["values"]
        assert seen["sim-1"]["values"]["telemetry_s"] == 300
        assert {d: seen[d]["version"] for d in seen} == desired

        with Session(engine) as session:
            put(session, "kind", "camera", fps=5)
            assert twin.reconcile(session, link) == 1  # only the camera changed
            assert twin.reconcile(session, link, force=True, only=["sim-1"]) == 1
        wait_until(
            lambda: reader.drain()["cam-1"]["values"]["fps"] == 5,
            what="the camera's new fps on the broker",
        )
    finally:
        reader.close()
        engine.dispose()
