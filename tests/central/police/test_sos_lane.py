"""The SOS lane on a real broker: an SOS never waits behind positions, and once.

Central runs in-process (SQLite) on a fresh Mosquitto. The caller is the
real handheld agent (outbox, link, SOS pin; no GNSS: central places it from
its officer row); the officer nearby is a plain MQTT client standing in for
a handheld, which also floods the bulk ingest with positions.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session, func, select
from support.waiting import wait_until

from central.fleet import registry
from central.models import Event
from central.police.models import Alarm, Officer
from edge.bus import PahoBus, Published, Received
from edge.node import build_agent
from edge.protocol import encode, make, topics
from edge.protocol.messages import HandheldConfig
from edge.protocol.signing import public_key_text
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = pytest.mark.mqtt

LAT, LON = 29.145, 113.118
NEAR = 300 / 110_850  # 300 m north, in degrees of latitude
FAST = HandheldConfig(sos_hold_s=0.5, sos_cancel_s=5.0, sos_retry_s=0.5)


class Lane:
    """Central, the caller's agent and the officer nearby."""

    def __init__(self, central: Central, agent: HandheldAgent, near: PahoBus) -> None:
        self.central = central
        self.agent = agent
        self.near = near
        self.alerts: list[dict[str, object]] = []

    def press(self, pin: Path) -> None:
        """A long press of the caller's SOS button."""
        set_level(pin, pressed=True)
        time.sleep(0.8)
        set_level(pin, pressed=False)

    def take_alerts(self) -> list[dict[str, object]]:
        """The SOS alerts the officer nearby has received so far."""
        while not self.near.inbox.empty():
            item = self.near.inbox.get_nowait()
            if isinstance(item, Received) and item.topic.endswith("/cmd/alert"):
                args = json.loads(item.payload)["body"]["args"]
                if args["kind"] == "sos":
                    self.alerts.append(args)
        return self.alerts

    def count(self, model: type[Alarm | Event], *where: Any) -> int:
        """Rows of ``model`` matching ``where``."""
        with Session(self.central.services.engine) as session:
            return int(
                session.exec(
                    select(func.count()).select_from(model).where(*where)
                ).one()
            )


@pytest.fixture
def lane(
    broker: Mosquitto, make_central: Callable[..., Central], tmp_path: Path
) -> Iterator[Lane]:
    central = make_central(
        f"sqlite:///{tmp_path / 'central.sqlite3'}",
        police_sos_repeat_s=600.0,  # no repeats: every alert counted is the first
        police_sos_escalate_s=3600.0,
    )
    now = datetime.now(UTC)
    with Session(central.services.engine) as session:
        for device, lat in (("hh-caller", LAT), ("hh-near", LAT + NEAR)):
            registry.register(
                session, device_id=device, kind="handheld", site="rjw", now=now
            )
            session.add(Officer(device=device, lat=lat, lon=LON, fix_ts=now))
        session.commit()
    near = PahoBus(
        client_id="hh-near",
        host="127.0.0.1",
        port=broker.port,
        subscriptions=[(f"{topics.ROOT}/hh-near/cmd/+", 1)],
        session_expiry=3600,
    )
    near.start()
    assert near.wait_subscribed(10)
    settings = HandheldSettings(
        device_id="hh-caller",
        kind="handheld",
        data_dir=tmp_path / "hh-caller",
        broker_port=broker.port,
        command_keys=[public_key_text(central.command_key.public_key())],
        require_signed_commands=True,
        gnss_url=str(tmp_path / "no-receiver"),
        sos_button=f"file:{tmp_path / 'sos.pin'}",
    )
    agent = build_agent(HandheldAgent, settings)
    agent.config = FAST
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    wait_until(lambda: agent.bus.connected, what="the caller's link")
    yield Lane(central, agent, near)
    stop.set()
    runner.join(timeout=10)
    near.stop()


def test_sos_is_raised_while_a_flood_of_positions_waits_for_the_bulk_ingest(
    lane: Lane, tmp_path: Path
) -> None:
    for worker in lane.central.workers:  # the bulk ingest falls behind entirely
        worker.stop()
    flood = 2000
    for _ in range(flood):
        fix = {"lat": LAT + NEAR, "lon": LON, "fix_ts": datetime.now(UTC).isoformat()}
        env = make("hh-near", "position", fix, now=datetime.now(UTC))
        lane.near.publish(topics.event("hh-near", "position"), encode(env))
    acked = 0

    def all_queued() -> bool:
        nonlocal acked
        while not lane.near.inbox.empty():
            item = lane.near.inbox.get_nowait()
            acked += isinstance(item, Published) and item.ok
        return acked >= flood

    wait_until(all_queued, what="the broker to hold every position")
    lane.press(tmp_path / "sos.pin")
    [alert] = wait_until(lane.take_alerts, what="the SOS alert nearby")
    assert alert["about"] == "hh-caller"
    assert lane.count(Alarm, Alarm.kind == "sos", Alarm.device == "hh-caller") == 1
    # Nothing bulk was taken before it: every position still waits.
    assert lane.count(Event, Event.type == "position") == 0
    assert lane.central.sos_lane is not None
    assert lane.central.sos_lane.taken >= 1
    wait_until(lambda: lane.agent.sos and lane.agent.sos["answered"])


def test_an_offline_handhelds_sos_is_delivered_once(
    lane: Lane, broker: Mosquitto, tmp_path: Path
) -> None:
    broker.stop()
    try:
        wait_until(lambda: not lane.agent.bus.connected, what="the link to drop")
        lane.press(tmp_path / "sos.pin")
        wait_until(lambda: lane.agent.sos, what="the SOS raised offline")
        time.sleep(1.0)  # it waits in the outbox; nothing reaches central
        assert lane.count(Alarm) == 0
    finally:
        broker.start()
    [alert] = wait_until(lane.take_alerts, timeout=30, what="the alert nearby")
    assert alert["about"] == "hh-caller"

    def answered() -> dict[str, Any] | None:
        sos = lane.agent.sos
        return sos if sos is not None and sos["answered"] else None

    sos = wait_until(answered, what="central's answer on the handheld")
    time.sleep(1.0)  # no attempt is repeated once answered; all are taken by now
    # Each attempt the handheld made is stored once, and raised one alarm.
    assert lane.count(Event, Event.type == "sos") == sos["attempt"]
    assert lane.count(Alarm, Alarm.kind == "sos") == 1
    assert len(lane.take_alerts()) == 1  # the officer nearby was alerted once


def test_a_site_may_run_the_sos_lane_in_a_process_of_its_own(
    broker: Mosquitto, make_central: Callable[..., Central], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    bulk = make_central(url, sos_lane=False)
    lane = make_central(
        url, workers=0, sos_lane=True, ingest_presence=False, worker_id="sos"
    )
    assert bulk.sos_lane is None
    assert lane.workers == []
    assert lane.sos_lane is not None
    now = datetime.now(UTC)
    with Session(bulk.services.engine) as session:
        registry.register(
            session, device_id="hh-caller", kind="handheld", site="rjw", now=now
        )
        session.commit()
    caller = PahoBus(client_id="hh-caller", host="127.0.0.1", port=broker.port)
    caller.start()
    try:
        assert caller.wait_connected(10)
        body = {"sos_id": "alone-1", "phase": "raised", "pressed_at": now.isoformat()}
        env = make("hh-caller", "sos", body, now=now)
        caller.publish(topics.sos("hh-caller"), encode(env))
        wait_until(lambda: lane.sos_lane and lane.sos_lane.taken, what="the lane")
    finally:
        caller.stop()
    with Session(bulk.services.engine) as session:
        [alarm] = session.exec(select(Alarm)).all()
    assert (alarm.key, alarm.device) == ("alone-1", "hh-caller")
